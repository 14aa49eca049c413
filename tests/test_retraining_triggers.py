"""Triggers on scripted error sequences: each fires exactly when it should."""

import pytest
import torch

from continual.errors import ConfigError
from continual.retraining import (
    AccuracyThreshold,
    AnyOf,
    CostAware,
    DriftDetector,
    EveryK,
    Never,
    NewSamples,
    Observation,
)


def obs(step: int, accuracy: float, n: int = 100) -> Observation:
    wrong = n - round(accuracy * n)
    return Observation(step, torch.arange(n) < wrong)


def fires(trigger, accuracies, n=100, reference=None, reset_on_fire=True):
    """Steps at which ``trigger`` fires over a scripted accuracy sequence."""
    trigger.reset(deployed=True, reference=reference)
    fired = []
    for step, acc in enumerate(accuracies):
        trigger.observe(obs(step, acc, n))
        if trigger.fire():
            fired.append(step)
            if reset_on_fire:
                trigger.reset(deployed=False)
    return fired


def test_observation_accuracy_counts_errors():
    assert obs(0, 0.83).accuracy == pytest.approx(0.83)
    assert obs(0, 0.83).n == 100


def test_never_never_fires():
    assert fires(Never(), [0.0] * 10) == []


def test_every_k_fires_on_schedule():
    assert fires(EveryK(3), [0.9] * 10) == [2, 5, 8]
    assert fires(EveryK(1), [0.9] * 4) == [0, 1, 2, 3]


def test_new_samples_counts_samples_not_chunks():
    assert fires(NewSamples(250), [0.9] * 10, n=100) == [2, 5, 8]
    assert fires(NewSamples(100), [0.9] * 3, n=100) == [0, 1, 2]


def test_absolute_threshold_fires_below_the_floor_only():
    acc = [0.9, 0.85, 0.79, 0.9, 0.5, 0.5]
    assert fires(AccuracyThreshold(min_accuracy=0.8, max_drop=None), acc) == [2, 4, 5]


def test_threshold_window_averages_chunks_since_the_last_retrain():
    acc = [0.9, 0.7, 0.85, 0.7, 0.7, 0.7, 0.7]
    # windows of 2: (0.9, 0.7)=0.8 ok, (0.7, 0.85)=0.775 fire; then after reset (0.7, 0.7) fire…
    assert fires(AccuracyThreshold(min_accuracy=0.78, max_drop=None, window=2), acc) == [2, 4, 6]


def test_relative_threshold_measures_from_the_post_deployment_accuracy():
    acc = [0.95, 0.9, 0.86, 0.84, 0.4]
    assert fires(AccuracyThreshold(max_drop=0.1), acc, reference=0.95) == [3, 4]
    assert fires(AccuracyThreshold(max_drop=0.1), acc, reference=0.6) == [4]
    # A rejected challenger keeps the old reference; a deployed one replaces it.
    trigger = AccuracyThreshold(max_drop=0.1)
    trigger.reset(deployed=True, reference=0.95)
    trigger.reset(deployed=False, reference=0.2)
    trigger.observe(obs(0, 0.8))
    assert trigger.fire()
    trigger.reset(deployed=True, reference=0.8)
    trigger.observe(obs(1, 0.75))
    assert not trigger.fire()


def test_threshold_needs_a_rule():
    with pytest.raises(ConfigError, match="min_accuracy=None and max_drop=None"):
        AccuracyThreshold(min_accuracy=None, max_drop=None)


@pytest.mark.parametrize("name", ["ADWIN", "KSWIN", "PageHinkley", "DDM", "EDDM", "HDDMA",
                                  "HDDMW", "FHDDM"])
def test_drift_detectors_fire_after_a_jump_in_errors_and_not_before(name):
    stable, jumped = [0.95] * 15, [0.3] * 10
    fired = fires(DriftDetector(name), stable + jumped, n=50)
    assert fired, f"{name} missed a jump from 5% to 70% errors"
    assert fired[0] >= 15, f"{name} fired at {fired[0]}, before the jump at 15"
    assert fired[0] <= 17, f"{name} took until step {fired[0]} to see the jump at 15"


def test_detector_sees_the_same_errors_in_the_same_order_as_a_direct_river_loop():
    from river.drift import ADWIN

    torch.manual_seed(0)
    errors = torch.cat([torch.rand(600) < 0.05, torch.rand(600) < 0.5])
    direct = ADWIN()
    first = None
    for i, e in enumerate(errors.tolist()):
        direct.update(int(e))
        if direct.drift_detected:
            first = i
            break
    trigger, chunk = DriftDetector("ADWIN"), 50
    for step in range(len(errors) // chunk):
        trigger.observe(Observation(step, errors[step * chunk:(step + 1) * chunk]))
        if trigger.fire():
            assert step == first // chunk
            break
    else:
        pytest.fail("the trigger never fired")


def test_unknown_detector_and_bad_kwargs_are_config_errors():
    with pytest.raises(ConfigError, match="detector='Magic'"):
        DriftDetector("Magic")
    with pytest.raises(ConfigError, match="river's ADWIN"):
        DriftDetector("ADWIN", {"no_such_option": 1})


def test_cost_aware_fires_when_accumulated_loss_exceeds_the_retrain_cost():
    # reference 0.9: losses 0, 0.1, 0.2 (=0.3 ≥ alpha 0.25) → fire at 2; then 0.3 ≥ 0.25 → 3.
    acc = [0.9, 0.8, 0.7, 0.6, 0.9, 0.9]
    assert fires(CostAware(alpha=0.25), acc, reference=0.9) == [2, 3]
    # A cheap retrain fires at the first loss; an expensive one waits longer.
    assert fires(CostAware(alpha=0.05), acc, reference=0.9) == [1, 2, 3]
    assert fires(CostAware(alpha=1.0), acc, reference=0.9) == []
    # Gains never offset losses: accuracy above the reference adds nothing.
    assert fires(CostAware(alpha=0.15), [1.0, 1.0, 0.7], reference=0.9) == [2]


def test_cost_aware_measures_from_the_best_post_deployment_level():
    trigger = CostAware(alpha=0.3)
    trigger.reset(deployed=True, reference=0.9)
    trigger.reset(deployed=True, reference=0.4)  # a retrain that did not recover
    trigger.observe(obs(0, 0.5))
    assert trigger.fire()  # 0.9 - 0.5 ≥ 0.3, though the last model started at 0.4


def test_any_of_fires_when_one_does_and_resets_all():
    trigger = AnyOf([EveryK(4), AccuracyThreshold(min_accuracy=0.5, max_drop=None)])
    assert fires(trigger, [0.9, 0.9, 0.4, 0.9, 0.9, 0.9, 0.9]) == [2, 6]


@pytest.mark.parametrize("make", [lambda: EveryK(0), lambda: NewSamples(0),
                                  lambda: CostAware(0), lambda: AnyOf([]),
                                  lambda: AccuracyThreshold(window=0)])
def test_bad_trigger_settings_are_config_errors(make):
    with pytest.raises(ConfigError, match="allowed"):
        make()


def detector_config(detector) -> dict:
    return {"name": "d", "trigger": {"class_path": "continual.retraining.DriftDetector",
                                     "init_args": {"detector": detector}}}


@pytest.mark.parametrize("detector", [
    "adwin",  # the short names, any case
    "river.drift.ADWIN",  # an import path
    {"class_path": "river.drift.ADWIN", "init_args": {"delta": 0.002}},  # like any class
])
def test_detector_by_alias_path_or_class_path_is_the_same_adwin(detector):
    from river.drift import ADWIN

    from continual.retraining.config import simulate_parser

    parser = simulate_parser()
    cfg = parser.parse_object({"policies": [detector_config(detector)]})
    [policy] = parser.instantiate(cfg).policies
    trigger = policy.trigger
    assert isinstance(trigger._detector, ADWIN) and trigger._detector.delta == 0.002
    stable, jumped = [0.95] * 15, [0.3] * 10
    assert fires(trigger, stable + jumped, n=50) == fires(DriftDetector("ADWIN"),
                                                          stable + jumped, n=50)


def test_detector_object_is_cloned_and_seeded_when_it_samples():
    from river.drift import KSWIN
    from river.drift.binary import FHDDM

    given = KSWIN(alpha=0.01)
    trigger = DriftDetector(given, seed=3)
    assert trigger._detector is not given and trigger._detector.seed == 3
    assert trigger._detector.alpha == 0.01
    assert DriftDetector(KSWIN(seed=7), seed=3)._detector.seed == 7  # its own seed is kept
    assert DriftDetector(FHDDM())._feed_correct  # fed correctness, as under its short name
    shown = repr(trigger)  # a policy's description: one line, as for a short name
    assert shown.startswith("DriftDetector(detector=KSWIN(alpha=0.01, ") and "\n" not in shown


@pytest.mark.parametrize("detector, message", [
    ("river.drift.NoSuch", "detector='river.drift.NoSuch' is unknown"),
    ("torch.nn.Linear", "allowed: ADWIN"),
    (object(), "detector=<object"),
])
def test_what_is_not_a_river_detector_is_a_config_error(detector, message):
    with pytest.raises(ConfigError, match=message):
        DriftDetector(detector)
