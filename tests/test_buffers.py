"""Replay memories: reservoir is uniform over the stream, balanced policies are balanced."""

from __future__ import annotations

import torch
from scipy import stats

from continual.buffers import ClassBalanced, ReplayBuffer, TaskBalanced, group_quotas


def test_reservoir_keeps_each_item_with_probability_capacity_over_n():
    capacity, n, batch, runs = 10, 50, 7, 2000
    kept = torch.zeros(n)
    for seed in range(runs):
        buffer = ReplayBuffer(capacity, seed=seed)
        for start in range(0, n, batch):
            ids = torch.arange(start, min(start + batch, n))
            buffer.add(ids.float().unsqueeze(1), ids % 3, torch.zeros_like(ids))
        assert len(buffer) == capacity
        kept[buffer.data().x.flatten().long()] += 1
    p = capacity / n
    expected = runs * p
    # Each item is a Bernoulli(p) per run; a fixed-size sample makes counts sum to runs·capacity,
    # so Σ (k - E)² / (E (1 - p)) follows χ² with n - 1 degrees of freedom under uniformity.
    statistic = float(((kept - expected) ** 2).sum() / (expected * (1 - p)))
    assert statistic < stats.chi2.ppf(1 - 1e-3, df=n - 1), (statistic, kept)  # false alarm 0.1 %
    # and the first items are not favoured over the last (a classic reservoir bug)
    assert abs(float(kept[:10].mean() - kept[-10:].mean())) < 4 * (expected * (1 - p) / 10) ** 0.5


def test_class_balanced_counts_are_balanced():
    buffer = ReplayBuffer(30, ClassBalanced(), seed=0)
    g = torch.Generator().manual_seed(0)
    y = torch.cat([torch.zeros(100), torch.ones(20), torch.full((5,), 2)]).long()
    y = y[torch.randperm(len(y), generator=g)]
    for start in range(0, len(y), 16):
        part = y[start:start + 16]
        buffer.add(torch.randn(len(part), 3), part, torch.zeros_like(part))
    counts = buffer.class_counts(3).tolist()
    assert counts == [13, 12, 5]  # class 2 keeps all it has; the rest is split evenly
    more = torch.full((40,), 3)
    buffer.add(torch.randn(40, 3), more, torch.zeros_like(more))
    assert buffer.class_counts(4).tolist() == [9, 8, 5, 8]


def test_task_balanced_gives_each_task_an_equal_share():
    buffer = ReplayBuffer(12, TaskBalanced(), seed=0)
    for task in range(3):
        t = torch.full((50,), task)
        buffer.add(torch.randn(50, 2), torch.randint(0, 10, (50,)), t)
    assert torch.bincount(buffer.data().t).tolist() == [4, 4, 4]


def test_group_quotas_water_filling():
    assert group_quotas(torch.tensor([1, 10, 10]), 10).tolist() == [1, 5, 4]
    assert group_quotas(torch.tensor([2, 2]), 10).tolist() == [2, 2]
    assert group_quotas(torch.tensor([5, 5, 5]), 10).tolist() == [4, 3, 3]


def test_inputs_keep_their_dtype_and_state_round_trips():
    buffer = ReplayBuffer(8, seed=3)
    x = torch.randint(0, 255, (20, 1, 4, 4), dtype=torch.uint8)
    y = torch.arange(20) % 5
    buffer.add(x, y, torch.zeros_like(y), logits=torch.randn(20, 5))
    assert buffer.data().x.dtype == torch.uint8
    clone = ReplayBuffer(8, seed=99)
    clone.load_state_dict(buffer.state_dict())
    a, b = buffer.sample(4), clone.sample(4)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    buffer.add(x, y, torch.zeros_like(y), logits=torch.randn(20, 5))
    clone.add(x, y, torch.zeros_like(y), logits=torch.randn(20, 5))
    assert torch.equal(buffer.data().x, clone.data().x)


def test_samples_are_distinct_items_of_the_memory():
    buffer = ReplayBuffer(16, seed=0)
    ids = torch.arange(40)
    buffer.add(ids.float().unsqueeze(1), ids % 2, torch.zeros_like(ids))
    x, y, t = buffer.sample(10)
    assert len(set(x.flatten().tolist())) == 10
    assert set(x.flatten().tolist()) <= set(buffer.data().x.flatten().tolist())
    assert len(buffer.sample(100)[0]) == 16
