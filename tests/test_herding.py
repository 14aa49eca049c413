"""Herding (Welling 2009; iCaRL's exemplar selection) as a buffer selection policy."""

from __future__ import annotations

import torch

from continual.buffers import Herding, ReplayBuffer, herding_order


def greedy_loop(features: list[list[float]], k: int) -> list[int]:
    """Herding as written in iCaRL's Algorithm 4, with plain Python numbers."""
    n, d = len(features), len(features[0])
    mu = [sum(f[j] for f in features) / n for j in range(d)]
    picked: list[int] = []
    for i in range(1, k + 1):
        best, best_gap = None, float("inf")
        for c in range(n):
            if c in picked:
                continue
            mean = [(features[c][j] + sum(features[p][j] for p in picked)) / i for j in range(d)]
            gap = sum((mu[j] - mean[j]) ** 2 for j in range(d))
            if gap < best_gap:
                best, best_gap = c, gap
        picked.append(best)
    return picked


def test_herding_picks_equal_the_explicit_greedy_loop():
    g = torch.Generator().manual_seed(0)
    for n, d, k in [(30, 5, 30), (40, 3, 12), (7, 16, 4)]:
        f = torch.randn(n, d, generator=g)
        assert herding_order(f, k).tolist() == greedy_loop(f.tolist(), k)


def test_herding_memory_keeps_each_class_first_picks_and_drops_the_last_ones():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(60, 4, generator=g), torch.arange(60) % 3
    policy = Herding()
    buffer = ReplayBuffer(12, policy)
    buffer.add(x[y < 2], y[y < 2], torch.zeros(40, dtype=torch.long),
               keys=policy.keys(x[y < 2], y[y < 2]))

    def kept(c: int) -> set[int]:
        mem = buffer.data()
        return {int(i) for i in (mem.x[mem.y == c][:, None] == x[None]).all(-1).nonzero()[:, 1]}

    for c, m in [(0, 6), (1, 6)]:
        members = (y == c).nonzero().flatten()
        assert kept(c) == set(members[herding_order(x[members], m)].tolist())
    buffer.add(x[y == 2], y[y == 2], torch.zeros(20, dtype=torch.long),
               keys=policy.keys(x[y == 2], y[y == 2]))  # a new class: shares shrink to 4
    for c in range(3):
        members = (y == c).nonzero().flatten()
        assert kept(c) == set(members[herding_order(x[members], 4)].tolist())
