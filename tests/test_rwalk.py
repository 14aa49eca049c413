"""RWalk: the importance accumulated over two tasks against an explicit computation; digits."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.seed import seed_everything
from torch import nn

from continual import ConfigError, ContinualModule, run
from continual.data import permuted
from continual.nets import MLP
from continual.strategies import FineTune, RWalk


def batches(seed: int, n: int = 5):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, generator=g), torch.randint(0, 2, (4,), generator=g))
            for _ in range(n)]


def explicit_importance(net: nn.Module, tasks, lam, alpha, delta_t, eps, lr):
    """The paper's Eqs. 6-8 written out step by step, one parameter tensor at a time."""
    net = copy.deepcopy(net)
    names = [n for n, _ in net.named_parameters()]
    fisher, score, omega, anchor = None, None, None, None
    for data in tasks:
        task_score = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
        drop = {n: torch.zeros_like(p) for n in names for p in [dict(net.named_parameters())[n]]}
        start = {n: p.detach().clone() for n, p in net.named_parameters()}
        for i, (x, y) in enumerate(data, 1):
            net.zero_grad()
            F.cross_entropy(net(x), y).backward()
            g = {n: p.grad.clone() for n, p in net.named_parameters()}
            fisher = {n: g[n] ** 2 if fisher is None else alpha * g[n] ** 2 + (1 - alpha)
                      * fisher[n] for n in names}
            with torch.no_grad():
                for n, p in net.named_parameters():
                    pull = 0 if omega is None else 2 * lam * omega[n] * (p - anchor[n])
                    before = p.clone()
                    p -= lr * (g[n] + pull)
                    drop[n] += -g[n] * (p - before)
            if i % delta_t == 0 or i == len(data):
                for n, p in net.named_parameters():
                    moved = p.detach() - start[n]
                    task_score[n] += drop[n] / (0.5 * fisher[n] * moved ** 2 + eps)
                    drop[n] = torch.zeros_like(p)
                    start[n] = p.detach().clone()
        score = task_score if score is None else {n: (score[n] + task_score[n]) / 2
                                                  for n in names}
        top_f = max(f.max() for f in fisher.values())
        top_s = max(s.clamp_min(0).max() for s in score.values())
        omega = {n: fisher[n] / top_f + score[n].clamp_min(0) / top_s for n in names}
        anchor = {n: p.detach().clone() for n, p in net.named_parameters()}
    return omega


@pytest.mark.parametrize("seed", range(3))
def test_importance_equals_the_papers_equations_written_out(seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    lam, alpha, delta_t, eps, lr = 0.5, 0.7, 2, 1e-3, 0.3
    expected = explicit_importance(net, [batches(seed), batches(seed + 10)], lam, alpha,
                                   delta_t, eps, lr)
    strategy = RWalk(lam=lam, alpha=alpha, delta_t=delta_t, eps=eps)
    module = ContinualModule(net, strategy)
    sgd = torch.optim.SGD(net.parameters(), lr=lr)
    for index, data in enumerate([batches(seed), batches(seed + 10)]):
        strategy.on_task_start(module, None, index)
        for x, y in data:
            sgd.zero_grad()
            F.cross_entropy(net(x), y).backward()
            strategy.on_before_optimizer_step(module)
            sgd.step()
            strategy.after_step(module, None)
        strategy.on_task_end(module, None, index)
    assert set(strategy.importance) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(strategy.importance[name], value, rtol=1e-4, atol=1e-6)


def test_alpha_outside_its_range_is_refused():
    with pytest.raises(ConfigError, match="alpha=0"):
        RWalk(alpha=0.0)


def test_rwalk_forgets_less_than_finetune_on_permuted_digits(digits_data):
    accuracy = {}
    for name, make in [("rwalk", lambda: RWalk(lam=1.0)), ("finetune", FineTune)]:
        seed_everything(0, verbose=False)
        stream = permuted(digits_data, n_tasks=3, seed=0)
        result = run(stream, ContinualModule(MLP(), make()), echo=None, batch_size=32,
                     trainer={"accelerator": "cpu", "max_epochs": 5})
        accuracy[name] = result.summary["average_accuracy"]
    assert accuracy["rwalk"] >= accuracy["finetune"] + 0.05, accuracy
