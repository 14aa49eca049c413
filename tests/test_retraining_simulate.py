"""Retraining policies on drifting digits: the behaviours issue #7 asks to see."""

import math

import pytest
import torch

from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.nets import MLP
from continual.retraining import (
    AccuracyThreshold,
    AnyOf,
    DeployGate,
    DriftDetector,
    DriftingChunks,
    EveryK,
    FullHistory,
    Incremental,
    Policy,
    QualityGate,
    SlidingWindow,
    chunked,
    simulate,
)
from continual.retraining.results import summarize
from continual.retraining.scores import chunks_to_recover
from continual.strategies import EWC, ExperienceReplay

FAST = {"max_epochs": 15}
FLOOR = 0.7  # digits' MLP sits at 80-95 % on a known concept


@pytest.fixture(scope="module")
def sudden():
    """24 chunks of 70 digits; from chunk 12 on every label is remapped."""
    return DriftingChunks(kind="sudden", concept="labels", n_steps=24, chunk_size=70,
                          drift_at=12).build()


def net():
    torch.manual_seed(0)
    return MLP(64, [100, 100], 10)


def sim(stream, policy, **kw):
    kw = {"trainer": FAST, "initial_chunks": 3, "drift_points": stream.drift_points, **kw}
    return simulate(stream.chunks, policy, net(), n_classes=stream.n_classes, **kw)


def accuracy(run):
    return torch.tensor([s.accuracy for s in run.steps], dtype=torch.float64).numpy()


@pytest.fixture(scope="module")
def sudden_runs(sudden):
    floor = AccuracyThreshold(min_accuracy=FLOOR, max_drop=0.1)
    policies = [
        Policy("never"),
        Policy("every", EveryK(1)),
        Policy("threshold", floor),
        Policy("adwin", AnyOf([DriftDetector("ADWIN"),
                               AccuracyThreshold(min_accuracy=FLOOR, max_drop=None)])),
    ]
    return {p.name: sim(sudden, p) for p in policies}


def test_never_retrain_drops_at_the_drift_and_stays_down(sudden_runs):
    acc = accuracy(sudden_runs["never"])
    assert acc[3:12].mean() > 0.7
    assert acc[12:].max() < 0.2
    assert chunks_to_recover(acc, 12) is None


def test_threshold_and_detector_recover_within_a_few_chunks_with_far_fewer_retrains(
        sudden_runs):
    every = summarize(sudden_runs["every"], alpha=0.5)
    for name in ("threshold", "adwin"):
        run = sudden_runs[name]
        row = summarize(run, alpha=0.5)
        assert chunks_to_recover(accuracy(run), 12) <= 5, name
        assert row["retrains"] * 3 <= every["retrains"], (name, row["retrains"])
        assert row["mean_accuracy"] > summarize(sudden_runs["never"], 0.5)["mean_accuracy"] + 0.2
        assert any(s.retrained for s in run.steps if 12 <= s.step <= 13), "slow to react"
    assert every["retrains"] == 21  # one per scored chunk


def test_a_drift_detector_alone_sees_the_drift_at_once(sudden):
    run = sim(sudden, Policy("adwin", DriftDetector("ADWIN"), SlidingWindow(1)))
    retrained = [s.step for s in run.steps if s.retrained and s.step >= 3]
    assert retrained and retrained[0] in (12, 13), retrained  # nothing before the drift
    assert len(retrained) <= 4
    assert chunks_to_recover(accuracy(run), 12) <= 3


def test_every_step_is_scored_before_the_model_trains_on_it(sudden, sudden_runs):
    run = sudden_runs["every"]
    assert [s.step for s in run.steps] == list(range(24))
    assert all(math.isnan(s.accuracy) for s in run.steps[:3])
    # The first chunk after the drift is scored by the model that never saw the new concept.
    assert run.steps[12].accuracy < 0.2 and run.steps[11].accuracy > 0.7


def test_label_delay_postpones_what_the_trigger_sees(sudden):
    policy = Policy("threshold", AccuracyThreshold(min_accuracy=FLOOR, max_drop=None))
    run = sim(sudden, policy, label_delay=2)
    first = min(s.step for s in run.steps if s.retrained and s.step >= 12)
    assert first == 14  # chunk 12's labels arrive at step 14


def test_caps_stop_retraining_and_say_why(sudden):
    run = sim(sudden, Policy("capped", EveryK(1), max_retrains=2))
    assert sum(s.retrained for s in run.steps[3:]) == 2
    assert [s.skipped for s in run.steps[5:7]] == ["max_retrains=2 reached"] * 2


def corrupted_stream(steps=(8, 9)):
    """No drift; the labels of ``steps`` are replaced by random ones (a broken pipeline)."""
    stream = DriftingChunks(kind="sudden", n_steps=14, chunk_size=100, drift_at=13).build()
    chunks = stream.chunks[:13]
    g = torch.Generator().manual_seed(1)
    for s in steps:
        chunks[s] = TensorData(chunks[s].x, torch.randint(0, 10, (100,), generator=g))
    return chunked(TensorData.concat(chunks), 100, n_classes=10)


def test_gate_keeps_the_champion_when_new_labels_are_corrupted():
    stream = corrupted_stream()
    gate = DeployGate(min_gain=0.02, max_negative_flip=0.05, holdout_chunks=5)
    run = sim(stream, Policy("gated", EveryK(1), deploy_gate=gate), holdout_fraction=0.3)
    by_step = {d.step: d for d in run.decisions}
    for s in (8, 9, 10):  # 10: trained on 8-10, what the champion has not learned
        assert not by_step[s].deploy, by_step[s]
        assert by_step[s].challenger_accuracy < by_step[s].champion_accuracy
        assert by_step[s].negative_flip_rate > 0 and by_step[s].n_holdout == 150
    assert by_step[8].negative_flip_rate > 0.05
    ungated = sim(stream, Policy("ungated", EveryK(1)), holdout_fraction=0.3)
    # Without the gate the corrupted model serves chunk 9 and 10; with it the champion does.
    assert accuracy(run)[9:11].mean() > accuracy(ungated)[9:11].mean() + 0.1


def test_gate_deploys_a_challenger_that_is_truly_better(sudden):
    gate = DeployGate(min_gain=0.05, max_negative_flip=0.1, holdout_chunks=2)
    run = sim(sudden, Policy("gated", EveryK(1), deploy_gate=gate))
    after = [d for d in run.decisions if d.step >= 13]
    deployed = [d for d in after if d.deploy]
    assert deployed, [d.reason for d in after]
    assert all(d.challenger_accuracy >= d.champion_accuracy + 0.05 for d in deployed)
    assert chunks_to_recover(accuracy(run), 12) <= 6


def test_quality_gate_drops_a_chunk_of_nans_and_bad_labels_and_says_so(capsys):
    stream = DriftingChunks(kind="sudden", n_steps=8, chunk_size=70, drift_at=7).build()
    chunks = list(stream.chunks)
    bad_x = chunks[4].x.clone()
    bad_x[:30] = float("nan")
    bad_y = chunks[4].y.clone()
    bad_y[30:40], bad_y[40:45] = 10, -3
    chunks[4] = TensorData(bad_x, bad_y)
    gated = Policy("gated", EveryK(1), quality_gate=QualityGate())
    run = simulate(chunks, gated, net(), n_classes=10, trainer=FAST, initial_chunks=2,
                   echo=print)
    nan_only = list(chunks)
    nan_only[4] = TensorData(bad_x, chunks[4].y.clamp(0, 9))
    [report] = [q for q in run.quality if q.step == 4]
    assert (report.nonfinite, report.bad_label, report.kept) == (30, 15, 25)
    assert "chunk 4: dropped 45/70" in capsys.readouterr().out
    assert run.steps[5].accuracy > 0.6  # the model trained on the clean 25 and kept serving
    # what the gate prevents: without one, such chunks are refused before anything trains
    with pytest.raises(ConfigError, match="chunk 5/8 holds 30 samples with NaN/inf inputs"):
        simulate(nan_only, Policy("raw", EveryK(1)), net(), n_classes=10, trainer=FAST,
                 initial_chunks=2)


def test_sliding_window_beats_full_history_after_the_labels_change(sudden):
    window = summarize(sim(sudden, Policy("window", EveryK(3), SlidingWindow(3))), 0.5)
    full = summarize(sim(sudden, Policy("full", EveryK(3), FullHistory()),
                         trainer={"max_epochs": 8}), 0.5)
    assert window["after_drift_accuracy"] > full["after_drift_accuracy"] + 0.1
    assert window["mean_accuracy"] > full["mean_accuracy"]
    assert window["train_samples"] < full["train_samples"]


def test_full_history_wins_when_old_concepts_recur():
    stream = DriftingChunks(kind="recurring", concept="rotation", n_steps=18, chunk_size=70,
                            drift_at=6, period=3).build()
    fit = {"trainer": {"max_epochs": 8}}
    window = summarize(sim(stream, Policy("window", EveryK(3), SlidingWindow(2)), **fit), 0.5)
    full = summarize(sim(stream, Policy("full", EveryK(3), FullHistory()), **fit), 0.5)
    assert full["mean_accuracy"] > window["mean_accuracy"] + 0.05


@pytest.mark.parametrize("strategy", [EWC(lam=30.0), ExperienceReplay(buffer_size=100)])
def test_incremental_updates_reuse_the_strategies(sudden, strategy):
    run = sim(sudden, Policy("inc", EveryK(4), Incremental(strategy)))
    assert sum(s.retrained for s in run.steps) >= 5
    assert accuracy(run)[3:12].mean() > 0.7
    held = getattr(strategy, "buffer", None)
    # The policy's strategy object is the template; the deployed copy carries the state.
    assert held is None or len(held) == 0


def test_bad_simulation_settings_are_config_errors(sudden):
    with pytest.raises(ConfigError, match="initial_chunks=24"):
        sim(sudden, Policy("p"), initial_chunks=24)
    with pytest.raises(ConfigError, match="holdout_fraction=1"):
        sim(sudden, Policy("p"), holdout_fraction=1)
    with pytest.raises(ConfigError, match="exceeds the 1797 samples"):
        DriftingChunks(n_steps=30, chunk_size=100).build()
