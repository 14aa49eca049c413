"""Tensor-backed labelled data: the in-memory representation every scenario works on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset


class TensorData(Dataset):
    """Inputs, labels and task ids held as three aligned tensors.

    Batches are gathered by one index operation (``__getitems__``), not sample by sample, so a
    standard :class:`~torch.utils.data.DataLoader` with :func:`pass_batch` as ``collate_fn``
    batches at the speed of slicing, and Lightning can still swap in a distributed sampler.

    Args:
        x: inputs, shape ``[N, *input_shape]``, any dtype.
        y: integer class labels, shape ``[N]``.
        t: task id of each sample, shape ``[N]``; zeros when omitted.
    """

    def __init__(self, x: Tensor, y: Tensor, t: Tensor | None = None) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        self.x = x
        self.y = y.long()
        self.t = torch.zeros_like(self.y) if t is None else t.long()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.x[i], self.y[i], self.t[i]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.x[idx], self.y[idx], self.t[idx]

    @property
    def targets(self) -> Tensor:
        """Class labels, as torchvision datasets name them."""
        return self.y

    @property
    def classes(self) -> list[int]:
        """Sorted distinct labels present."""
        return torch.unique(self.y).tolist()

    def subset(self, index: Tensor) -> TensorData:
        """Samples at a boolean mask or an integer index."""
        return TensorData(self.x[index], self.y[index], self.t[index])

    def sample(self, n: int | None, seed: int) -> TensorData:
        """At most ``n`` samples drawn without replacement (all of them when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        generator = torch.Generator().manual_seed(seed)
        return self.subset(torch.randperm(len(self), generator=generator)[:n])

    def with_task(self, task_id: int) -> TensorData:
        """The same samples, all labelled as belonging to ``task_id``."""
        return TensorData(self.x, self.y, torch.full_like(self.y, task_id))

    @staticmethod
    def concat(parts: Sequence[TensorData]) -> TensorData:
        """One dataset holding ``parts`` in order."""
        if len(parts) == 1:
            return parts[0]
        return TensorData(
            torch.cat([p.x for p in parts]),
            torch.cat([p.y for p in parts]),
            torch.cat([p.t for p in parts]),
        )


def pass_batch(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """``collate_fn`` for :class:`TensorData`: its ``__getitems__`` already returns a batch."""
    return batch
