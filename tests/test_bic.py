"""BiC: the bias layer's fit against a generic optimiser, the held-out split, class-IL digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from scipy.optimize import minimize

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import BiC, ExperienceReplay
from continual.strategies.bic import balanced_holdout, corrected, fit_bias


def held_out_loss(ab, z, y, new, ridge=0.0):
    """The cross-entropy of the corrected logits, one sample and one class at a time."""
    total = 0.0
    for row, label in zip(z, y):
        q = [ab[0] * v + ab[1] if n else v for v, n in zip(row, new)]
        top = max(q)
        total += top + math.log(sum(math.exp(v - top) for v in q)) - q[label]
    return total / len(z) + ridge * ((ab[0] - 1) ** 2 + ab[1] ** 2)


@pytest.mark.parametrize("ridge", [0.0, 0.1])
@pytest.mark.parametrize("seed", range(3))
def test_bias_fit_is_the_minimum_a_generic_optimiser_finds(seed, ridge):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 5, (40,), generator=g)
    z = torch.randn(40, 5, generator=g, dtype=torch.float64) + 2 * torch.nn.functional.one_hot(
        y, 5)
    z[:, 3:] += 2.5  # the new classes' logits inflated: the bias BiC corrects
    new = torch.tensor([False, False, False, True, True])
    alpha, beta = fit_bias(z, y, new, ridge)
    zs, ys, ns = z.tolist(), y.tolist(), new.tolist()
    generic = minimize(held_out_loss, np.array([1.0, 0.0]), args=(zs, ys, ns, ridge),
                       method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12,
                                                      "maxiter": 4000})
    np.testing.assert_allclose([alpha, beta], generic.x, atol=1e-4)
    assert beta < 0  # the inflation is taken back
    assert held_out_loss((alpha, beta), zs, ys, ns, ridge) <= generic.fun + 1e-9
    fitted = corrected(z, (alpha, beta, [3, 4]))  # the correction as evaluation applies it
    assert math.isclose(held_out_loss((1.0, 0.0), fitted.tolist(), ys, ns) + ridge * (
        (alpha - 1) ** 2 + beta ** 2), held_out_loss((alpha, beta), zs, ys, ns, ridge))


def test_holdout_takes_the_same_number_of_each_class_or_all_it_has():
    y = torch.tensor([0] * 10 + [1] * 2 + [2] * 7)
    mask = balanced_holdout(y, per_class=3, seed=0)
    assert torch.bincount(y[mask]).tolist() == [3, 2, 3]
    assert not torch.equal(mask, balanced_holdout(y, per_class=3, seed=1))  # random picks


def test_val_fraction_outside_its_range_is_refused():
    with pytest.raises(ConfigError, match="val_fraction=1.5"):
        BiC(val_fraction=1.5)


def test_held_out_items_are_not_trained_on(digits_data):
    stream = split_classes(digits_data, n_tasks=3, scenario="class")
    strategy = BiC(buffer_size=140)
    for i in (0, 1):
        strategy.remember_task(stream, i)  # 20 exemplars per class: 2 of each held out
    train, held = strategy.split(stream, 2)
    assert len(train) + len(held) == len(stream[2].train) + 140
    counts = torch.bincount(held.y, minlength=10)
    assert all(counts[c] == 2 for task in stream for c in task.classes)  # old and new alike
    rows = {tuple(r) for r in held.x.flatten(1).tolist()}
    assert not any(tuple(r) in rows for r in train.x.flatten(1).tolist())


def test_evaluation_applies_the_fitted_correction_to_the_last_tasks_classes(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=3, scenario="class")
    strategy = BiC(buffer_size=60)
    module = ContinualModule(MLP(hidden=(32,)), strategy)
    run(stream, module, echo=None, batch_size=32, trainer={"accelerator": "cpu", "max_epochs": 2})
    alpha, beta, classes = strategy.state_dict()["bias"]
    assert sorted(classes) == sorted(stream[2].classes) and (alpha, beta) != (1.0, 0.0)
    module.eval()
    x = stream[0].test.x[:8]
    raw = module.net(x)
    torch.testing.assert_close(module(x)[:, classes], alpha * raw[:, classes] + beta)


def test_bic_beats_er_with_the_same_memory_class_incremental(digits_data):
    accuracy = {}
    for name, make in [("bic", BiC), ("er", ExperienceReplay)]:
        seed_everything(0, verbose=False)
        stream = split_classes(digits_data, n_tasks=5, scenario="class")
        result = run(stream, ContinualModule(MLP(), make()), echo=None, batch_size=32,
                     trainer={"accelerator": "cpu", "max_epochs": 10})
        accuracy[name] = result.summary["average_accuracy"]
    assert accuracy["bic"] >= accuracy["er"], accuracy
