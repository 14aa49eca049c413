"""Monitoring without labels: the MMD test's calibration, and rotating digits flagged from
the drift's start, never on the stable prefix (issue #20)."""

from __future__ import annotations

import base64

import pytest
import torch

from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.module import ContinualModule
from continual.nets import MLP
from continual.retraining import DriftingChunks, Monitor, mmd_permutation_test
from continual.retraining.monitor import write_report
from continual.retraining.train import fit

DRIFT_AT = 8


def test_mmd_test_holds_its_level_and_sees_a_shift():
    g = torch.Generator().manual_seed(0)
    null = [mmd_permutation_test(torch.randn(60, 5, generator=g), torch.randn(60, 5, generator=g),
                                 permutations=200, seed=i)[1] for i in range(40)]
    assert sum(p < 0.05 for p in null) <= 5  # about 2 expected at level 0.05
    shifted = torch.randn(60, 5, generator=g) + 0.8
    _, p = mmd_permutation_test(torch.randn(60, 5, generator=g), shifted, 200, 0)
    assert p < 0.01


def test_feature_tests_equal_a_loop_of_ks_tests_and_find_the_one_feature_that_moved():
    from scipy.stats import ks_2samp

    from continual.retraining.monitor import feature_ks_test

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(120, 50, generator=g), torch.randn(100, 50, generator=g)
    y[:, 7] += 1.5  # one feature of fifty moves
    corrected, each = feature_ks_test(x, y)
    loop = [ks_2samp(x[:, j].numpy(), y[:, j].numpy()).pvalue for j in range(50)]
    assert torch.allclose(each, torch.tensor(loop, dtype=torch.float64))
    assert corrected == pytest.approx(min(1.0, 50 * min(loop)))
    assert corrected < 0.01 and (each < 0.01 / 50).nonzero().flatten().tolist() == [7]
    null = [feature_ks_test(torch.randn(60, 20, generator=g), torch.randn(60, 20, generator=g))[0]
            for _ in range(40)]
    assert sum(p < 0.05 for p in null) <= 5  # Bonferroni keeps the level (or below)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotating_digits_flagged_at_the_drift_and_never_before(seed):
    stream = DriftingChunks(kind="incremental", concept="rotation", n_steps=16, chunk_size=100,
                            drift_at=DRIFT_AT, degrees_per_step=15, seed=seed).build()
    assert stream.drift_points == [DRIFT_AT]
    torch.manual_seed(seed)
    module = ContinualModule(MLP(64, [64], 10))
    module.prepare_for(10, stream.chunks[0].x, None)
    fit(module, TensorData.concat(stream.chunks[:3]), None, trainer={"max_epochs": 10},
        batch_size=32, seed=seed)
    monitor = Monitor()  # alpha 0.01, 500 permutations
    reference = stream.chunks[3].x  # never trained on
    rows = [monitor.check(module, reference, stream.chunks[i].x, seed=i) for i in range(4, 16)]
    steps = list(range(4, 16))
    false_alarms = [s for s, r in zip(steps, rows) if s < DRIFT_AT and r["drift"]]
    flagged = [s for s, r in zip(steps, rows) if s >= DRIFT_AT and r["drift"]]
    assert false_alarms == []
    assert flagged and flagged[0] - DRIFT_AT <= 2  # delay in batches (measured: 0)
    assert all(r["features_drifted"] == 0 for s, r in zip(steps, rows) if s < DRIFT_AT)
    assert all(r["drift"] for s, r in zip(steps, rows) if s >= DRIFT_AT + 2)
    before = [r["confidence"] for s, r in zip(steps, rows) if s < DRIFT_AT]
    after = [r["confidence"] for s, r in zip(steps, rows) if s >= DRIFT_AT + 2]
    assert max(after) < min(before)  # the label-free estimate falls as accuracy does


def test_report_is_written_from_a_state(tmp_path):
    row = {"step": 3, "p_value": 0.001, "confidence": 0.4, "reference_confidence": 0.6,
           "drift": True, "alarm": True, "describe": "input drift (p=0.0010)"}
    steps = [{"step": i, "hash": "ab" * 32, "accuracy": None if i < 2 else 0.8,
              "retrained": i == 1, "deployed": i == 1, "version": "1" if i == 1 else None,
              "skipped": None} for i in range(4)]
    path = write_report({"steps": steps, "monitor": [row]}, tmp_path / "r.html", "t")
    text = path.read_text()
    assert "data:image/png;base64," in text and "step 3: input drift" in text
    png = (tmp_path / "r.png").read_bytes()  # the same picture, on its own
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and base64.b64encode(png).decode() in text


def test_bad_monitor_settings_are_config_errors():
    with pytest.raises(ConfigError, match="alpha=2"):
        Monitor(alpha=2)
