"""Labelled data whose inputs stay where they are (files, chunks) and are read batch by batch.

:class:`LazyData` has :class:`~continual.data.tensors.TensorData`'s surface, but only its
labels and task ids are tensors in memory: splitting by class or task, subsets and replay
selection work on those and on row indices into the source, and an input is read only when
a batch holds it (by a ``DataLoader`` with workers, :mod:`continual.data.lazy_loading`). The
few pieces a strategy needs in memory (a Fisher sample) come out of :meth:`LazyData.sample`
and :meth:`LazyData.materialize` as ``TensorData``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

from continual.data.datasets import _as_tensor
from continual.data.tensors import PixelNormalization, TensorData, Transform
from continual.errors import ConfigError


class LazyData(Dataset):
    """Row ``i`` is input ``source[index[i]]`` with label ``y[i]`` and task id ``t[i]``.

    Args:
        source: a map-style dataset; item ``j`` is an input, an ``(input, label, ...)`` tuple
            or a dict with key ``"x"``; inputs are tensors, numpy arrays or PIL images (read
            as uint8 ``[C, H, W]``). Its labels are not read: ``y`` is.
        y: integer class label of each row, ``[N]``, known up front.
        t: task id of each row (zeros when omitted).
        index: the source position of each row (default ``0..N-1``).
        transform, normalization: as on :class:`TensorData`.
        num_workers: processes reading inputs for the runner's loaders (0: the main process).
    """

    def __init__(self, source: Dataset, y: Tensor, t: Tensor | None = None,
                 index: Tensor | None = None, transform: Transform | None = None,
                 normalization: PixelNormalization | None = None, num_workers: int = 0) -> None:
        if num_workers < 0:
            raise ConfigError(f"num_workers={num_workers} is invalid; allowed: 0 or more")
        self.source = source
        self.y = torch.as_tensor(y).long()
        self.t = torch.zeros_like(self.y) if t is None else torch.as_tensor(t).long()
        self.index = torch.arange(len(self.y)) if index is None else torch.as_tensor(index).long()
        if not len(self.y) == len(self.t) == len(self.index):
            raise ConfigError(f"{len(self.y)} labels, {len(self.t)} task ids and "
                              f"{len(self.index)} source rows; allowed: one each per sample")
        self.transform, self.normalization = transform, normalization
        self.num_workers = num_workers

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        return read_input(self.source, int(self.index[i])), self.y[i], self.t[i]

    def __getitems__(self, rows: Sequence[int] | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The batch at ``rows``: inputs read one by one and stacked, ``[B, *input_shape]``."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        x = torch.stack([read_input(self.source, j) for j in self.index[rows].tolist()])
        return x, self.y[rows], self.t[rows]

    read = __getitems__

    @property
    def x(self) -> Tensor:
        raise ConfigError("lazy data holds no inputs in memory, and this code reads them all "
                          "(.x); allowed: a strategy that trains on batches (FineTune, ER, DER, "
                          "EWC, ...) or TensorData (data.materialize())")

    @property
    def targets(self) -> Tensor:
        return self.y

    @property
    def classes(self) -> list[int]:
        return torch.unique(self.y).tolist()

    def _like(self, index: Tensor | slice | None = None, t: Tensor | None = None,
              transform: Any = ..., normalization: Any = ...) -> LazyData:
        pick = slice(None) if index is None else index
        return LazyData(self.source, self.y[pick], self.t[pick] if t is None else t,
                        self.index[pick], self.transform if transform is ... else transform,
                        self.normalization if normalization is ... else normalization,
                        self.num_workers)

    def subset(self, index: Tensor) -> LazyData:
        """Rows at a boolean mask or an integer index (nothing is read)."""
        return self._like(torch.as_tensor(index))

    def with_task(self, task_id: int) -> LazyData:
        return self._like(t=torch.full_like(self.y, task_id))

    def with_transform(self, transform: Transform | None) -> LazyData:
        """The same rows declaring ``transform`` as their training augmentation."""
        return self._like(transform=transform)

    def with_normalization(self, normalization: PixelNormalization | None) -> LazyData:
        return self._like(normalization=normalization)

    def to(self, device: torch.device | str) -> LazyData:
        """Itself: inputs are read where batches are formed, then moved per batch."""
        return self

    def sample(self, n: int | None, seed: int) -> TensorData:
        """:meth:`TensorData.sample`'s draw (the same rows for the same seed), read into memory."""
        if n is None or n >= len(self):
            return self.materialize()
        generator = torch.Generator().manual_seed(seed)
        return self.subset(torch.randperm(len(self), generator=generator)[:n]).materialize()

    def materialize(self, batch_size: int = 256) -> TensorData:
        """Every row read into memory, in order (with this data's workers)."""
        if len(self) == 0:
            raise ConfigError("cannot materialize empty lazy data (its input shape is unknown)")
        from continual.data.lazy_loading import ordered_batches

        x = torch.cat([batch[0] for batch in ordered_batches(self, 0, len(self), batch_size)])
        return TensorData(x, self.y, self.t, self.transform, self.normalization)

    @staticmethod
    def concat(parts: Sequence[LazyData]) -> LazyData:
        """One dataset holding ``parts`` in order; parts of different sources are joined by
        a ``ConcatDataset`` (nothing is read)."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        for what in ("transform", "normalization"):
            if len({id(getattr(p, what)) for p in parts}) > 1:
                raise ConfigError(f"cannot concatenate lazy data with different {what}s")
        sources = list({id(p.source): p.source for p in parts}.values())
        if len(sources) == 1:
            index = torch.cat([p.index for p in parts])
        else:
            offsets = dict(zip(map(id, sources), [0, *_cumulative(map(len, sources))]))
            index = torch.cat([p.index + offsets[id(p.source)] for p in parts])
        source = sources[0] if len(sources) == 1 else ConcatDataset(sources)
        return LazyData(source, torch.cat([p.y for p in parts]), torch.cat([p.t for p in parts]),
                        index, first.transform, first.normalization,
                        max(p.num_workers for p in parts))

    def __repr__(self) -> str:
        return (f"LazyData({len(self)} rows of {type(self.source).__name__}, "
                f"num_workers={self.num_workers})")


def _cumulative(sizes) -> list[int]:
    total, out = 0, []
    for s in sizes:
        total += s
        out.append(total)
    return out[:-1]


def read_input(source: Dataset, j: int) -> Tensor:
    """Item ``j``'s input as a tensor (PIL images as uint8 ``[C, H, W]``)."""
    item = source[j]
    if isinstance(item, dict):
        item = item["x"]
    elif isinstance(item, (tuple, list)):
        item = item[0]
    return _as_tensor(item, j, type(source).__name__)


def first_inputs(data: TensorData | LazyData, n: int = 1) -> Tensor:
    """The first ``n`` inputs ``[n, *input_shape]`` (read, for lazy data)."""
    if isinstance(data, LazyData):
        return data.read(torch.arange(min(n, len(data))))[0]
    return data.x[:n]


def concat_data(parts: Sequence[TensorData | LazyData]) -> TensorData | LazyData:
    """:meth:`TensorData.concat` or :meth:`LazyData.concat`, by what ``parts`` are."""
    lazy = [isinstance(p, LazyData) for p in parts]
    if all(lazy):
        return LazyData.concat(parts)
    if any(lazy):
        raise ConfigError("cannot concatenate lazy data with in-memory data; allowed: parts "
                          "of one kind (data.materialize() makes lazy data in-memory)")
    return TensorData.concat(parts)
