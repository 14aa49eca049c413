"""The data-quality gate and the champion/challenger gate, against brute-force counts."""

import itertools

import pytest
import torch

from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.retraining import DeployGate, Policy, QualityGate, negative_flip_rate


def test_quality_gate_drops_nonfinite_inputs_and_out_of_range_labels():
    x = torch.randn(10, 4)
    x[1, 2], x[3, 0], x[4, 1] = float("nan"), float("inf"), -float("inf")
    y = torch.tensor([0, 1, 2, 3, 9, 10, -1, 5, 2, 2])
    kept, report = QualityGate(max_copies=None, n_classes=10)(TensorData(x, y), step=7)
    assert (report.nonfinite, report.bad_label, report.duplicates) == (3, 2, 0)
    assert report.kept == len(kept) == 5 and report.dropped == 5
    assert torch.isfinite(kept.x).all() and ((kept.y >= 0) & (kept.y < 10)).all()
    assert "chunk 7: dropped 5/10" in report.describe()
    assert "3 NaN/inf inputs" in report.describe() and "2 labels outside" in report.describe()


def test_quality_gate_passes_an_empty_chunk():
    empty = TensorData(torch.empty(0, 2, 3), torch.empty(0, dtype=torch.long))
    kept, report = QualityGate(n_classes=10)(empty, step=2)
    assert len(kept) == report.received == report.kept == report.dropped == 0


@pytest.mark.parametrize("max_copies", [1, 2, 3])
def test_duplicate_flood_is_cut_to_max_copies_like_a_brute_force_count(max_copies):
    torch.manual_seed(0)
    base = torch.randint(0, 3, (40, 2)).float()  # few distinct rows: many exact copies
    y = torch.randint(0, 2, (40,))
    kept, report = QualityGate(max_copies=max_copies, n_classes=2)(TensorData(base, y), 0)
    seen: dict = {}
    expected = []
    for row, label in zip(base.tolist(), y.tolist()):
        key = (tuple(row), label)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= max_copies:
            expected.append([*row, label])
    got = torch.cat([kept.x, kept.y[:, None].float()], dim=1).tolist()
    assert got == expected  # the first copies, in arrival order
    assert report.duplicates == 40 - len(expected)


def test_negative_flip_rate_matches_a_loop():
    for a, b in itertools.product(itertools.product([0, 1], repeat=4), repeat=2):
        champ, chall = torch.tensor(a, dtype=torch.bool), torch.tensor(b, dtype=torch.bool)
        brute = sum(c and not d for c, d in zip(a, b)) / 4
        assert negative_flip_rate(champ, chall) == pytest.approx(brute)


def correct(n_right: int, n: int = 100) -> torch.Tensor:
    return torch.arange(n) < n_right


def test_gate_deploys_a_better_challenger_and_records_why():
    d = DeployGate(min_gain=0.02, max_negative_flip=0.05).decide(4, correct(80), correct(90))
    assert d.deploy and d.step == 4 and d.n_holdout == 100
    assert (d.champion_accuracy, d.challenger_accuracy) == pytest.approx((0.8, 0.9))
    assert d.negative_flip_rate == 0.0


def test_gate_keeps_the_champion_on_too_small_a_gain_or_a_tie():
    assert not DeployGate(min_gain=0.02).decide(0, correct(80), correct(81)).deploy
    assert not DeployGate().decide(0, correct(80), correct(80)).deploy
    assert not DeployGate(min_relative_gain=0.1).decide(0, correct(80), correct(87)).deploy
    assert DeployGate(min_relative_gain=0.1).decide(0, correct(80), correct(89)).deploy


def test_gate_keeps_the_champion_when_too_many_answers_flip_to_wrong():
    champion = correct(80)
    challenger = torch.zeros(100, dtype=torch.bool)
    challenger[10:100] = True  # 90 % right, but 10 % of what the champion got right now wrong
    decision = DeployGate(max_negative_flip=0.05).decide(0, champion, challenger)
    assert not decision.deploy and decision.negative_flip_rate == pytest.approx(0.10)
    assert "negative flips 10.0% > cap 5.0%" in decision.reason
    assert DeployGate(max_negative_flip=None).decide(0, champion, challenger).deploy


def test_bad_gate_and_policy_settings_are_config_errors():
    with pytest.raises(ConfigError, match="holdout_chunks=0"):
        DeployGate(holdout_chunks=0)
    with pytest.raises(ConfigError, match="max_retrains=-1"):
        Policy("p", max_retrains=-1)
    with pytest.raises(ConfigError, match="name=''"):
        Policy("")


def test_caps_name_the_budget_that_stops_a_retrain():
    policy = Policy("p", max_retrains=3, max_train_seconds=10.0, max_train_samples=500)
    assert policy.over_budget(2, 9.9, 499) is None
    assert policy.over_budget(3, 0.0, 0) == "max_retrains=3 reached"
    assert policy.over_budget(0, 10.0, 0) == "max_train_seconds=10.0 spent"
    assert policy.over_budget(0, 0.0, 500) == "max_train_samples=500 spent"
