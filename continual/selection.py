"""Which items a replay memory keeps: selection policies and the bottom-k machinery.

Every policy here is *bottom-k sampling*: each arriving item draws a random key once, and the
memory keeps, within each group's quota, the items with the smallest keys. With one group this
is exactly a uniform sample of the whole stream (what reservoir sampling gives: each of ``n``
items kept with probability ``capacity / n``); grouping by class or by task gives a uniform
sample of each class or task, with the capacity shared out equally among them. Herding ranks
each class's items by how well they keep the class mean instead of drawing keys.
"""

from __future__ import annotations

import torch
from torch import Tensor


class SelectionPolicy:
    """Decides the groups that share the capacity equally; by itself a single group."""

    def groups(self, y: Tensor, t: Tensor) -> Tensor:
        return torch.zeros_like(y)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Reservoir(SelectionPolicy):
    """A uniform sample of everything seen (Vitter's reservoir, in distribution)."""


class ClassBalanced(SelectionPolicy):
    """Equal room per class seen, a uniform sample within each class (GDumb's memory)."""

    def groups(self, y: Tensor, t: Tensor) -> Tensor:
        return y


class TaskBalanced(SelectionPolicy):
    """Equal room per task seen, a uniform sample within each task."""

    def groups(self, y: Tensor, t: Tensor) -> Tensor:
        return t


class Herding(SelectionPolicy):
    """Equal room per class, filled in herding order (Welling 2009; iCaRL's exemplars,
    Rebuffi et al. 2017).

    :meth:`keys` ranks each class's items by :func:`herding_order` on their features; offered
    with these keys (``ReplayBuffer.add(..., keys=...)``), the memory keeps each class's first
    ``m`` picks, and shrinking a class's share drops its last picks first, as iCaRL's exemplar
    reduction does. Items offered without keys get random ones (then it is
    :class:`ClassBalanced`).
    """

    def groups(self, y: Tensor, t: Tensor) -> Tensor:
        return y

    @torch.no_grad()
    def keys(self, features: Tensor, y: Tensor) -> Tensor:
        """``[N]`` float64 keys: each item's position in its class's herding order."""
        keys = torch.empty(len(y), dtype=torch.float64)
        y = y.cpu()
        for c in torch.unique(y):
            members = (y == c).nonzero().flatten()
            order = herding_order(features[members.to(features.device)]).cpu()
            keys[members[order]] = torch.arange(len(members), dtype=torch.float64)
        return keys


@torch.no_grad()
def herding_order(features: Tensor, k: int | None = None) -> Tensor:
    """The first ``k`` (default: all) of ``features`` ``[N, D]`` in herding order.

    Greedily, pick the item that brings the mean of the picks closest to the mean of all
    ``N``: ``p_i = argmin_j ‖μ − (f_j + Σ_{l<i} f_{p_l}) / i‖`` over items not yet picked
    (iCaRL's Algorithm 4). Returns indices ``[k]``.
    """
    n = len(features)
    k = n if k is None else min(k, n)
    f = features.double()
    target = f.mean(0)
    total = torch.zeros_like(target)
    free = torch.ones(n, dtype=torch.bool, device=f.device)
    order = torch.empty(k, dtype=torch.long, device=f.device)
    for i in range(k):
        gap = (target - (total + f) / (i + 1)).square().sum(1)  # [N]
        pick = gap.masked_fill(~free, float("inf")).argmin()
        order[i], free[pick] = pick, False
        total += f[pick]
    return order


def group_quotas(counts: Tensor, capacity: int) -> Tensor:
    """Share ``capacity`` among groups as equally as their sizes allow (water-filling).

    A group smaller than its equal share keeps all its items and its unused room goes to the
    others; leftover single slots go to the lowest group indices.
    """
    quotas = torch.zeros_like(counts)
    remaining = capacity
    while remaining > 0:
        open_groups = (quotas < counts).nonzero().flatten()
        if len(open_groups) == 0:
            break
        share = remaining // len(open_groups)
        if share == 0:
            quotas[open_groups[:remaining]] += 1
            break
        add = torch.minimum(counts[open_groups] - quotas[open_groups],
                            torch.tensor(share, dtype=counts.dtype))
        quotas[open_groups] += add
        remaining -= int(add.sum())
    return quotas


def bottom_k(keys: Tensor, groups: Tensor, capacity: int) -> Tensor:
    """Boolean mask of the items to keep: the smallest keys within each group's quota."""
    _, group_index = torch.unique(groups, return_inverse=True)
    counts = torch.bincount(group_index)
    quotas = group_quotas(counts, capacity)
    order = torch.argsort(keys)
    order = order[torch.argsort(group_index[order], stable=True)]  # by group, then key
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(keys)) - starts[group_index[order]]
    keep = torch.zeros(len(keys), dtype=torch.bool)
    keep[order] = rank < quotas[group_index[order]]
    return keep


def smallest(keys: Tensor, k: int) -> Tensor:
    """Boolean mask of the ``k`` smallest keys (all of them when there are at most ``k``)."""
    keep = torch.ones(len(keys), dtype=torch.bool)
    if len(keys) > k:
        keep[torch.topk(keys, len(keys) - k).indices] = False  # drop the largest
    return keep
