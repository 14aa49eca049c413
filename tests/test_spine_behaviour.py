"""End-to-end behaviour on Split-Digits: forgetting exposed, full retraining remembers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from torch import nn

from continual import ContinualModule, Result, run
from continual.data import split_classes
from continual.errors import ConfigError
from continual.nets import MLP
from continual.strategies import FineTune, FullRetrain, Joint, Strategy

_cache: dict[tuple, Result] = {}


def run_digits(digits_data, strategy: Strategy, scenario="class", seed=0, run_dir=None):
    key = (repr(strategy), scenario, seed, run_dir)
    if key not in _cache:
        seed_everything(seed, verbose=False)
        stream = split_classes(digits_data, n_tasks=5, scenario=scenario)
        module = ContinualModule(MLP(), strategy)
        _cache[key] = run(stream, module, trainer={"accelerator": "cpu", "max_epochs": 10},
                          batch_size=16, seed=seed, run_dir=run_dir, echo=None)
    return _cache[key]


def test_finetune_forgets_the_first_task(digits_data):
    r = run_digits(digits_data, FineTune())
    assert r.matrix[0, 0] > 0.95            # it was learned ...
    assert r.matrix[-1, 0] < 0.20           # ... and forgotten after four more tasks
    assert r.summary["average_accuracy"] < 0.35
    assert r.summary["forgetting"] > 0.8


def test_full_retrain_from_scratch_keeps_every_task(digits_data):
    r = run_digits(digits_data, FullRetrain(from_scratch=True))
    for i in range(5):
        assert (r.matrix[i, : i + 1] > 0.85).all(), f"row {i}: {r.matrix[i]}"
    assert r.summary["average_accuracy"] > 0.9


def test_full_retrain_cost_grows_and_finetune_cost_does_not(digits_data):
    full = [c.train_samples for c in run_digits(digits_data, FullRetrain()).cost]
    fine = [c.train_samples for c in run_digits(digits_data, FineTune()).cost]
    assert all(b > a for a, b in zip(full, full[1:]))
    assert full[-1] > 4 * full[0]
    assert max(fine) < 1.1 * min(fine)
    # samples processed are epochs × the training set actually used
    assert fine[0] == 10 * 252
    assert full[-1] == sum(fine)


def test_joint_trains_once_on_everything(digits_data):
    r = run_digits(digits_data, Joint())
    assert r.cost[0].train_samples == sum(
        c.train_samples for c in run_digits(digits_data, FineTune()).cost)
    assert all(c.train_samples == 0 for c in r.cost[1:])
    assert np.array_equal(r.matrix[0], r.matrix[-1])
    assert r.summary["average_accuracy"] > 0.9


def test_task_incremental_finetune_forgets_far_less(digits_data):
    task_il = run_digits(digits_data, FineTune(), scenario="task")
    class_il = run_digits(digits_data, FineTune(), scenario="class")
    assert task_il.summary["average_accuracy"] > class_il.summary["average_accuracy"] + 0.5
    # the untrained network still guesses among the task's 2 classes: ~50 %, not ~10 %
    assert task_il.baseline.mean() > 0.3


def test_seeded_runs_repeat_exactly(digits_data):
    def once():
        seed_everything(3, verbose=False)
        stream = split_classes(digits_data, n_tasks=5)
        module = ContinualModule(MLP(), FullRetrain(from_scratch=False))
        result = run(stream, module, trainer={"accelerator": "cpu", "max_epochs": 2}, seed=3,
                     echo=None)
        return result, [p.detach().clone() for p in module.parameters()]

    (a, wa), (b, wb) = once(), once()
    assert np.array_equal(a.matrix, b.matrix)
    assert all(torch.equal(x, y) for x, y in zip(wa, wb))


def test_results_are_saved_after_every_task(digits_data, tmp_path):
    r = run_digits(digits_data, FineTune(), run_dir=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["complete"] is True
    assert np.allclose(saved["matrix"], r.matrix)
    assert saved["summary"]["average_accuracy"] == pytest.approx(r.summary["average_accuracy"])
    assert len(saved["cost"]) == 5
    assert saved["versions"]["torch"] == torch.__version__
    lines = (tmp_path / "accuracy_matrix.csv").read_text().splitlines()
    assert lines[0].startswith("after_task,task_0") and len(lines) == 6
    assert np.allclose(Result.load(tmp_path).matrix, r.matrix)


def test_network_with_too_few_outputs_is_rejected(digits_data):
    stream = split_classes(digits_data, n_tasks=5)
    module = ContinualModule(nn.Sequential(nn.Flatten(), nn.Linear(64, 5)))
    with pytest.raises(ConfigError, match=r"labels run 0..9; allowed: a net with \[B, >= 10\]"):
        run(stream, module, echo=None)


def test_the_untrained_evaluation_can_be_left_out(digits_data, tmp_path):
    import math

    from continual.result import Result

    stream = split_classes(digits_data, n_tasks=2)
    result = run(stream, ContinualModule(MLP()), trainer={"max_epochs": 1}, echo=None,
                 evaluate_untrained=False, run_dir=tmp_path)
    assert np.isnan(result.baseline).all() and len(result.matrix) == 2
    assert math.isnan(result.summary["forward_transfer"])
    assert np.isnan(Result.load(tmp_path).baseline).all()  # results.json round-trips it
