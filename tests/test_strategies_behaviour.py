"""Strategies on small real data behave as the literature reports (seeds fixed)."""

from __future__ import annotations

import pytest
from lightning.fabric.utilities.seed import seed_everything

from continual import ContinualModule, Result, run
from continual.data import permuted, split_classes
from continual.nets import MLP
from continual.strategies import (
    AGEM,
    EWC,
    SI,
    DERpp,
    ExperienceReplay,
    FineTune,
    GDumb,
    OnlineEWC,
)

_cache: dict[str, Result] = {}
SPLIT = {"trainer": {"accelerator": "cpu", "max_epochs": 20}, "batch_size": 32}
PERMUTED = {"trainer": {"accelerator": "cpu", "max_epochs": 5}, "batch_size": 32}


def split_run(digits_data, name, make, scenario="class") -> Result:
    key = f"split-{scenario}-{name}"
    if key not in _cache:
        seed_everything(0, verbose=False)
        stream = split_classes(digits_data, n_tasks=5, scenario=scenario)
        _cache[key] = run(stream, ContinualModule(MLP(), make()), echo=None, **SPLIT)
    return _cache[key]


def permuted_run(digits_data, name, make) -> Result:
    key = f"permuted-{name}"
    if key not in _cache:
        seed_everything(0, verbose=False)
        stream = permuted(digits_data, n_tasks=5, seed=0)
        net = MLP(hidden=(256, 256))  # five permutations need more room than the split tasks
        _cache[key] = run(stream, ContinualModule(net, make()), echo=None, **PERMUTED)
    return _cache[key]


def acc(result: Result) -> float:
    return result.summary["average_accuracy"]


def test_replay_remembers_where_finetune_forgets_class_incremental(digits_data):
    finetune = split_run(digits_data, "finetune", FineTune)
    replay = split_run(digits_data, "er", lambda: ExperienceReplay(buffer_size=200))
    assert acc(finetune) <= 0.25
    assert acc(replay) >= 0.80


def test_derpp_is_at_least_as_good_as_er_with_the_same_memory(digits_data):
    replay = split_run(digits_data, "er", lambda: ExperienceReplay(buffer_size=200))
    derpp = split_run(digits_data, "derpp", lambda: DERpp(buffer_size=200))
    assert acc(derpp) >= acc(replay)


@pytest.mark.parametrize("name, make", [("ewc", lambda: EWC(lam=30.0)),
                                        ("si", lambda: SI(lam=10.0))])
def test_regularisers_beat_finetune_on_permuted_digits(digits_data, name, make):
    finetune = permuted_run(digits_data, "finetune", FineTune)
    regularised = permuted_run(digits_data, name, make)
    assert acc(regularised) >= acc(finetune) + 0.10


@pytest.mark.parametrize("name, make", [("ewc", lambda: EWC(lam=30.0)),
                                        ("si", lambda: SI(lam=10.0))])
def test_regularisers_do_not_hurt_task_incremental(digits_data, name, make):
    # Task-incremental Split-Digits leaves FineTune near its ceiling (~98 %), so the
    # regularisers can only hold it there; the 10-point gap shows on Permuted-Digits.
    finetune = split_run(digits_data, "finetune", FineTune, "task")
    regularised = split_run(digits_data, name, make, "task")
    assert acc(finetune) > 0.9
    assert acc(regularised) >= acc(finetune) - 0.01


def test_gdumb_trains_only_on_its_balanced_memory(digits_data):
    gdumb = GDumb(buffer_size=60)
    result = split_run(digits_data, "gdumb", lambda: gdumb)
    stream = split_classes(digits_data, n_tasks=5)
    seen = 0
    for i, cost in enumerate(result.cost):
        seen += len(stream[i].train)
        # every epoch is one pass over the memory, never over the task's own data
        assert cost.train_samples == 20 * min(60, seen)
    assert gdumb.buffer.class_counts(10).tolist() == [6] * 10
    assert acc(result) > 0.6


def test_online_ewc_memory_does_not_grow_with_tasks(digits_data):
    stream = permuted(digits_data, n_tasks=20, seed=0)
    trainer = {"accelerator": "cpu", "max_epochs": 1, "limit_train_batches": 2}
    sizes = {}
    for make in (lambda: OnlineEWC(lam=10.0, n_samples=32), lambda: EWC(lam=10.0, n_samples=32)):
        strategy = make()
        run(stream, ContinualModule(MLP(), strategy), trainer=trainer, echo=None)
        sizes[type(strategy).__name__] = strategy.memory_bytes()
    one_task = 2 * sum(p.numel() * 4 for p in MLP().parameters())  # anchor + Fisher
    assert sizes["OnlineEWC"] == one_task
    assert sizes["EWC"] == 20 * one_task


@pytest.mark.parametrize("make", [lambda: AGEM(buffer_size=40), lambda: EWC(lam=10.0),
                                  lambda: SI(lam=1.0), lambda: DERpp(buffer_size=40)])
def test_strategies_train_under_bf16_mixed_precision(digits_data, make):
    stream = split_classes(digits_data, n_tasks=3)
    trainer = {"accelerator": "cpu", "max_epochs": 2, "precision": "bf16-mixed"}
    seed_everything(0, verbose=False)
    result = run(stream, ContinualModule(MLP(), make()), trainer=trainer, echo=None)
    assert result.complete
    # The last task was learned: well above the 10 % of chance (A-GEM's projection slows it
    # to ~40 % in 2 epochs, in float32 as in bf16).
    assert result.matrix[-1, -1] > 0.3
