"""GEM: the QP projection against a generic solver, the constraints on a real step, digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.seed import seed_everything
from scipy.optimize import minimize

from continual import ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import GEM, FineTune
from continual.strategies.gem import gem_project


@pytest.mark.parametrize("seed", range(5))
def test_projection_satisfies_every_constraint_and_is_the_closest_such_gradient(seed):
    g = torch.Generator().manual_seed(seed)
    grad, past = torch.randn(8, generator=g, dtype=torch.float64), \
        torch.randn(3, 8, generator=g, dtype=torch.float64)
    past[0] = -grad + 0.1 * torch.randn(8, generator=g, dtype=torch.float64)  # one conflict
    projected = gem_project(grad, past).numpy()
    assert (past.numpy() @ projected >= -1e-9).all()
    # The primal problem, min ‖z − g‖² subject to past · z ≥ 0, by a generic solver.
    G, gn = past.numpy(), grad.numpy()
    generic = minimize(lambda z: ((z - gn) ** 2).sum(), gn, jac=lambda z: 2 * (z - gn),
                       constraints=[{"type": "ineq", "fun": lambda z: G @ z, "jac": lambda z: G}],
                       method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
    assert generic.success
    np.testing.assert_allclose(projected, generic.x, atol=1e-5)


def test_a_gradient_no_past_task_opposes_is_left_unchanged():
    grad, past = torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert gem_project(grad, past, margin=0.5) is grad


def test_each_step_increases_no_past_tasks_memory_loss_to_first_order(digits_data):
    torch.manual_seed(0)
    stream = split_classes(digits_data, n_tasks=3)
    module = ContinualModule(MLP(hidden=(16,)), GEM(buffer_size=60, margin=0.0, eps=0.0))
    for i in range(2):
        module.strategy.on_task_end(module, stream, i)
    x, y = stream[2].train.x[:32], stream[2].train.y[:32]
    F.cross_entropy(module(x), y).backward()
    module.strategy.on_before_optimizer_step(module)
    step = torch.cat([p.grad.flatten() for p in module.net.parameters()])
    memory = module.strategy.buffer.data()
    for task in (0, 1):
        own = memory.t == task
        module.zero_grad()
        F.cross_entropy(module(memory.x[own]), memory.y[own]).backward()
        past = torch.cat([p.grad.flatten() for p in module.net.parameters()])
        assert torch.dot(step, past) >= -1e-5 * step.norm() * past.norm()  # float32 rounding


def test_gem_remembers_where_finetune_forgets_class_incremental(digits_data):
    accuracy = {}
    for name, make in [("gem", GEM), ("finetune", FineTune)]:
        seed_everything(0, verbose=False)
        stream = split_classes(digits_data, n_tasks=5, scenario="class")
        result = run(stream, ContinualModule(MLP(), make()), echo=None, batch_size=32,
                     trainer={"accelerator": "cpu", "max_epochs": 10})
        accuracy[name] = result.summary["average_accuracy"]
    assert accuracy["gem"] >= 0.85 and accuracy["gem"] >= accuracy["finetune"] + 0.3, accuracy
