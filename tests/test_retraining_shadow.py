"""Shadow (A/B) evaluation in the simulator: a challenger that passes on held-out data serves in
shadow for k batches and is promoted only if it also wins on them (issue #20)."""

import pytest
import torch

from continual.errors import ConfigError
from continual.nets import MLP
from continual.retraining import (
    AccuracyThreshold,
    DeployGate,
    DriftingChunks,
    Policy,
    SlidingWindow,
    simulate,
)

K = 2
# Concept A (the digits' labels) then B (labels remapped), in this order: a lone B chunk at step
# 4 that A follows again (a challenger fitted to it wins on its held-out part, loses live), then
# B for good from step 7 (a challenger wins on both).
ORDER = [0, 1, 2, 3, 6, 4, 5, 7, 8, 9, 10, 11]


@pytest.fixture(scope="module")
def chunks():
    stream = DriftingChunks(kind="sudden", concept="labels", n_steps=12, chunk_size=100,
                            drift_at=6).build()
    return [stream.chunks[i] for i in ORDER]


def run(chunks, shadow_batches):
    torch.manual_seed(0)
    gate = DeployGate(min_gain=0.0, max_negative_flip=None, holdout_chunks=1,
                      shadow_batches=shadow_batches)
    policy = Policy("threshold", AccuracyThreshold(min_accuracy=0.5, max_drop=None),
                    SlidingWindow(chunks=1), deploy_gate=gate)
    return simulate(chunks, policy, MLP(64, [64], 10), n_classes=10, trainer={"max_epochs": 30},
                    initial_chunks=3)


@pytest.fixture(scope="module")
def shadowed(chunks):
    return run(chunks, K)


def test_promotion_comes_k_batches_after_a_passing_gate_and_only_on_a_live_win(shadowed):
    decisions = shadowed.decisions
    assert [(d.step, d.stage) for d in decisions] == [
        (2, "holdout"), (4, "holdout"), (4 + K, "shadow"), (7, "holdout"), (7 + K, "shadow")]
    held_out, live = decisions[1::2], decisions[2::2]
    assert all(d.deploy and f"in shadow for the next {K} batches" in d.reason
               for d in held_out)
    for gate, verdict in zip(held_out, live):
        scored = [s for s in shadowed.steps if gate.step < s.step <= verdict.step]
        assert len(scored) == K
        # the champion's live score is the prequential row of the batches it served
        assert verdict.n_holdout == sum(s.n for s in scored)
        assert verdict.champion_accuracy == pytest.approx(
            sum(s.accuracy * s.n for s in scored) / verdict.n_holdout)
        assert verdict.deploy == (verdict.challenger_accuracy > verdict.champion_accuracy)
        assert verdict.reason.startswith(f"shadow verdict on {K} live batches")
    # The B-only challenger of step 4 won on B's held-out part, lost on the A batches after it.
    assert not live[0].deploy and live[0].challenger_accuracy < 0.5
    assert live[1].deploy
    assert [s.step for s in shadowed.steps if s.deployed] == [2, 7 + K]
    assert [s.step for s in shadowed.steps if s.retrained] == [2, 4, 7]


def test_a_firing_trigger_waits_while_a_challenger_is_in_shadow(shadowed):
    skipped = {s.step: s.skipped for s in shadowed.steps if s.skipped}
    assert skipped == {8: "challenger in shadow"}  # the champion fails on B; no second retrain
    assert all(s.accuracy > 0.6 for s in shadowed.steps[7 + K + 1:])  # the promoted one serves


def test_shadow_spares_the_stream_a_challenger_that_only_won_on_held_out_data(chunks, shadowed):
    direct = run(chunks, 0)
    assert 4 in [s.step for s in direct.steps if s.deployed]  # promoted on held-out data alone
    after = slice(4 + 1, 4 + 1 + K)  # the A batches after the lone B one
    shadow_acc = [s.accuracy for s in shadowed.steps[after]]
    direct_acc = [s.accuracy for s in direct.steps[after]]
    assert min(shadow_acc) > 0.7 and direct_acc[0] < 0.2  # direct served the B-only model
    assert sum(shadow_acc) > sum(direct_acc) + 0.3


def test_negative_shadow_batches_is_a_config_error():
    with pytest.raises(ConfigError, match="shadow_batches=-1 is invalid"):
        DeployGate(shadow_batches=-1)
