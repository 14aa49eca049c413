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


def test_a_batch_filled_memory_with_herding_keeps_each_tasks_herding_picks():
    """ER and DER fill their memory batch by batch; with a Herding policy each task's items
    are chosen again at the task's end: the greedy loop's picks on the network's features."""
    import torch.nn.functional as F

    from continual import ContinualModule, run
    from continual.data import digits, split_classes
    from continual.nets import MLP
    from continual.strategies import DER, ExperienceReplay
    from continual.strategies.features import penultimate

    stream = split_classes(digits(), n_tasks=2)
    for strategy in (ExperienceReplay(buffer_size=20, policy=Herding()),
                     DER(buffer_size=20, policy=Herding())):
        torch.manual_seed(0)
        module = ContinualModule(MLP(hidden=[32]), strategy)
        run(stream, module, trainer={"max_epochs": 1, "accelerator": "cpu"}, echo=None)
        memory, last = strategy.buffer.data(), stream[1].train
        features = F.normalize(penultimate(module.net, last.x).float(), dim=1)
        quota = 20 // 10  # ten classes seen: two items each
        for c in stream[1].classes:
            members = (last.y == c).nonzero().flatten()
            picks = greedy_loop(features[members].tolist(), quota)
            expected = last.x[members[picks]]
            kept = memory.x[memory.y == c]
            assert len(kept) == quota
            assert sorted(map(tuple, kept.tolist())) == sorted(map(tuple, expected.tolist()))
        if strategy.buffer.holds_logits:  # DER: the logits of the network at the task's end
            x, _, _, z = strategy.buffer.sample(20)
            mine = (x.flatten(1)[:, None] == last.x.flatten(1)[None]).all(-1).any(1)
            module.net.eval()
            assert mine.sum() == 5 * quota and torch.allclose(z[mine], module.net(x[mine]))
