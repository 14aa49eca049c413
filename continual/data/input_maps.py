"""Deterministic per-batch input maps: the fixed view a task (or a drift concept) puts on inputs.

A permuted or rotated task over in-memory data transforms its tensors once; over
:class:`~continual.data.lazy.LazyData` it cannot (the inputs stay on disk), so the same map is
held by the data and applied to each batch as it is read. The maps act on each sample alone,
so a batch mapped here holds bit for bit the rows the whole-tensor transform gives. They are
plain picklable objects, so loader worker processes can run them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

InputMap = Callable[[Tensor], Tensor]


class Identity:
    """Inputs as they are read."""

    def __call__(self, x: Tensor) -> Tensor:
        return x

    def __repr__(self) -> str:
        return "Identity()"


class Permute:
    """Input features ``[B, *shape]`` shuffled by a fixed permutation of the flattened features."""

    def __init__(self, perm: Tensor) -> None:
        self.perm = torch.as_tensor(perm, dtype=torch.long)

    def __call__(self, x: Tensor) -> Tensor:
        return x.flatten(1)[:, self.perm].reshape(x.shape)  # as permuted.py does in memory

    def __repr__(self) -> str:
        return f"Permute({len(self.perm)} features)"


class Rotate:
    """Images ``[B, C, H, W]`` turned by a fixed angle (degrees, counter-clockwise)."""

    def __init__(self, angle: float) -> None:
        self.angle = float(angle)

    def __call__(self, x: Tensor) -> Tensor:
        from continual.data.rotated import rotate

        return rotate(x, self.angle)

    def __repr__(self) -> str:
        return f"Rotate({self.angle:g})"


class Chain:
    """``steps`` applied in order."""

    def __init__(self, *steps: InputMap) -> None:
        self.steps = steps

    def __call__(self, x: Tensor) -> Tensor:
        for step in self.steps:
            x = step(x)
        return x

    def __repr__(self) -> str:
        return " -> ".join(map(repr, self.steps))


def chain(first: InputMap, then: InputMap) -> InputMap:
    """``first`` then ``then``, without identities or nested chains (short reprs, fast calls)."""
    steps = [s for m in (first, then)
             for s in (m.steps if isinstance(m, Chain) else (m,)) if not isinstance(s, Identity)]
    if not steps:
        return Identity()
    return steps[0] if len(steps) == 1 else Chain(*steps)


def apply_maps(x: Tensor, maps: tuple[InputMap, ...], which: Tensor) -> Tensor:
    """Row ``i`` of ``x`` through ``maps[which[i]]``; one call per map present in the batch."""
    first = int(which[0])
    if bool((which == first).all()):
        return maps[first](x)
    groups = which.unique().tolist()
    parts = {g: maps[g](x[which == g]) for g in groups}
    like = parts[groups[0]]
    out = torch.empty((len(x), *like.shape[1:]), dtype=like.dtype)
    for g, part in parts.items():
        out[which == g] = part
    return out


class Standardize:
    """Float inputs to zero mean, unit variance per feature: ``(x - mean) / std``."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        self.mean, self.std = mean, std

    def __call__(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Standardize(shape {tuple(self.mean.shape)})"
