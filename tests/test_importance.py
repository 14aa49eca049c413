"""Fisher, MAS importance, the quadratic penalty and A-GEM's projection against brute force."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from continual import ContinualModule
from continual.data import TensorData
from continual.strategies import EWC
from continual.strategies.agem import agem_project
from continual.strategies.importance import (
    fisher_diagonal,
    output_norm_importance,
    quadratic_penalty,
    trainable,
)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4))


def tiny_data(n=13, seed=1):
    g = torch.Generator().manual_seed(seed)
    return TensorData(torch.randn(n, 6, generator=g), torch.randint(0, 4, (n,), generator=g),
                      torch.randint(0, 2, (n,), generator=g))


def masked(logits, mask_row):
    return logits if mask_row is None else logits.masked_fill(~mask_row, float("-inf"))


def loop_fisher(net, data, mode, class_mask=None):
    """Brute force: one backward pass per sample (and per class for the true Fisher)."""
    params = [p for p in net.parameters()]
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(data)):
        row = None if class_mask is None else class_mask[data.t[i]]
        logp = F.log_softmax(masked(net(data.x[i : i + 1])[0], row), -1)
        if mode == "empirical":
            weighted = [(1.0, data.y[i])]
        else:
            weighted = [(p.item(), c) for c, p in enumerate(logp.exp().detach()) if p > 0]
        for w, c in weighted:
            grads = torch.autograd.grad(logp[c], params, retain_graph=True)
            for acc, g in zip(total, grads):
                acc += w * g**2
    return [acc / len(data) for acc in total]


@pytest.mark.parametrize("mode", ["true", "empirical"])
@pytest.mark.parametrize("task_masked", [False, True])
def test_fisher_from_torch_func_equals_a_per_sample_loop(mode, task_masked):
    net, data = tiny_net(), tiny_data()
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool) if task_masked else None
    if task_masked:  # labels consistent with each sample's task
        data = TensorData(data.x, data.y % 2 + 2 * data.t, data.t)
    fast = fisher_diagonal(net, data, mask, mode=mode, batch_size=5)
    slow = loop_fisher(net, data, mode, mask)
    for (name, f), s in zip(fast.items(), slow):
        torch.testing.assert_close(f, s, rtol=1e-4, atol=1e-7, msg=name)


def test_true_and_empirical_fisher_differ():
    net, data = tiny_net(), tiny_data()
    true, emp = fisher_diagonal(net, data, mode="true"), fisher_diagonal(net, data,
                                                                        mode="empirical")
    assert not torch.allclose(true["3.weight"], emp["3.weight"])


def test_mas_importance_equals_a_per_sample_loop():
    net, data = tiny_net(), tiny_data()
    fast = output_norm_importance(net, data, batch_size=4)
    params = list(net.parameters())
    slow = [torch.zeros_like(p) for p in params]
    for i in range(len(data)):
        out = net(data.x[i : i + 1])
        for acc, g in zip(slow, torch.autograd.grad((out**2).sum(), params)):
            acc += g.abs()
    for f, s in zip(fast.values(), slow):
        torch.testing.assert_close(f, s / len(data), rtol=1e-4, atol=1e-7)


def injected_gradient(module) -> list[torch.Tensor]:
    """The gradient EWC adds before the optimizer step, starting from zero gradients."""
    for p in module.net.parameters():
        p.grad = torch.zeros_like(p)
    module.strategy.on_before_optimizer_step(module)
    return [p.grad.clone() for p in module.net.parameters()]


def test_ewc_penalty_is_zero_at_the_anchor_and_its_gradient_is_2_lambda_F_delta():
    net, data = tiny_net(), tiny_data()
    module = ContinualModule(net, EWC(lam=7.0))
    importance = fisher_diagonal(net, data)
    anchor = trainable(net)
    module.strategy.consolidate(anchor, importance)
    assert module.strategy.penalty(module).item() == 0.0
    assert all((g == 0).all() for g in injected_gradient(module))

    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    value = module.strategy.penalty(module)
    by_hand = sum((importance[n] * (p - anchor[n]) ** 2).sum() for n, p in net.named_parameters())
    torch.testing.assert_close(value, by_hand)
    autograd = torch.autograd.grad(7.0 * value, list(net.parameters()))
    for (name, p), g, a in zip(net.named_parameters(), injected_gradient(module), autograd):
        expected = 2 * 7.0 * importance[name] * (p.detach() - anchor[name])
        torch.testing.assert_close(g, expected)
        torch.testing.assert_close(a, expected)


def test_quadratic_penalty_matches_its_definition():
    a = {"w": torch.tensor([1.0, 2.0])}
    theta = {"w": torch.tensor([2.0, 0.0])}
    omega = {"w": torch.tensor([3.0, 0.5])}
    assert quadratic_penalty(theta, a, omega).item() == pytest.approx(3.0 * 1 + 0.5 * 4)


def test_agem_projection_never_conflicts_with_the_reference():
    g = torch.Generator().manual_seed(0)
    conflicts = 0
    for _ in range(500):
        grad, ref = torch.randn(50, generator=g), torch.randn(50, generator=g)
        projected = agem_project(grad, ref)
        assert torch.dot(projected, ref) >= -1e-5
        if torch.dot(grad, ref) >= 0:
            assert torch.equal(projected, grad)  # agreeing gradients are left alone
        else:
            conflicts += 1
            assert torch.dot(projected, ref).abs() < 1e-4  # projected onto the boundary
            # the smallest change: only the component along the reference is removed
            residual = projected - grad
            cos = torch.dot(residual, ref) / (residual.norm() * ref.norm())
            assert cos.abs() > 0.999
    assert conflicts > 100


def test_many_ewc_penalties_equal_their_explicit_sum():
    net = tiny_net()
    module = ContinualModule(net, EWC(lam=3.0))
    g = torch.Generator().manual_seed(4)
    anchors, fishers = [], []
    for _ in range(3):
        anchor = {n: p.detach() + torch.randn(p.shape, generator=g) for n, p in
                  net.named_parameters()}
        fisher = {n: torch.rand(p.shape, generator=g) for n, p in net.named_parameters()}
        fisher["1.bias"][0] = 0.0  # an entry no task cares about
        module.strategy.consolidate(anchor, fisher)
        anchors.append(anchor)
        fishers.append(fisher)
    named = dict(net.named_parameters())
    explicit = sum(quadratic_penalty(named, a, f) for a, f in zip(anchors, fishers))
    torch.testing.assert_close(module.strategy.penalty(module), explicit, rtol=1e-5, atol=1e-4)
    expected = torch.autograd.grad(3.0 * explicit, list(net.parameters()))
    for a, b in zip(injected_gradient(module), expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_importances_work_on_a_net_with_dropout_and_leave_its_mode_alone():
    import torch
    from torch import nn

    from continual.data.tensors import TensorData
    from continual.strategies.importance import fisher_diagonal, output_norm_importance

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    data = TensorData(torch.randn(10, 4), torch.randint(0, 3, (10,)))
    for compute in (output_norm_importance, fisher_diagonal):
        net.train()
        first, again = compute(net, data), compute(net, data)
        assert net.training  # restored
        for name in first:  # evaluated without dropout: deterministic
            assert torch.equal(first[name], again[name])
