"""Batches of lazy data through a ``DataLoader``: worker processes read inputs while training.

The order is the in-memory path's (:class:`~continual.data.batching.EpochShuffle`, drawn in
the main process from ``(seed, task, epoch)``), so a lazy stream trains on exactly the batches
its in-memory twin would, and a resumed task on those it would have had.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from continual.data.lazy import LazyData
from continual.data.tensors import TensorData, pass_batch

Batches = Iterable[Tensor | Sequence[int]]


def data_loader(data: LazyData | WithRows, batch_sampler: Batches, pin_memory: bool = False,
                persistent: bool = False, workers: int | None = None) -> DataLoader:
    """A ``DataLoader`` reading ``batch_sampler``'s rows of ``data`` with its workers
    (``workers``: as many, default the data's).

    Its own generator seeds the workers: creating the iterator takes no draw from torch's
    global RNG, which the in-memory path does not touch either (training stays bit-identical).
    """
    if workers is None:
        workers = (data.data if isinstance(data, WithRows) else data).num_workers
    return DataLoader(data, batch_sampler=batch_sampler, collate_fn=pass_batch,
                      num_workers=workers, pin_memory=pin_memory,
                      persistent_workers=persistent and workers > 0,
                      generator=torch.Generator())


class WithRows(Dataset):
    """``data``'s batches with a fourth member: the batch's rows in ``data``, which a replay
    memory can keep instead of copies of the inputs (:attr:`continual.strategies.Step.rows`)."""

    def __init__(self, data: LazyData) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, rows: Sequence[int] | Tensor) -> tuple[Tensor, ...]:
        rows = torch.as_tensor(rows, dtype=torch.long)
        return (*self.data.__getitems__(rows), rows)


class LazyLoader(Iterable[tuple[Tensor, ...]]):
    """The runner's loader for lazy data: a ``DataLoader`` whose workers persist across a
    task's epochs, iterated only from the first batch on.

    Lightning creates a loader's iterator before it calls ``set_epoch`` (at a fit's start, and
    on resume); a ``DataLoader`` with workers would draw its first indices right then, in the
    previous epoch's order. Iterating it inside a generator delays that to the first batch.

    Args:
        data: the rows to read (``dataset``, for callbacks that read it).
        batch_sampler: each batch's rows; its ``sampler`` is where Lightning finds ``set_epoch``.
        pin_memory: page-locked batches, for a faster copy to an accelerator.
        rows: batches carry their rows as a fourth member (training: see :class:`WithRows`).
    """

    def __init__(self, data: LazyData, batch_sampler: Batches, pin_memory: bool = False,
                 rows: bool = False) -> None:
        self.dataset, self.batch_sampler = data, batch_sampler
        self.sampler = getattr(batch_sampler, "sampler", None)
        self._loader: DataLoader | None = data_loader(
            WithRows(data) if rows else data, batch_sampler, pin_memory, persistent=True)

    def __len__(self) -> int:
        return len(self.batch_sampler)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        if self._loader is None:
            raise RuntimeError("this loader was closed")
        yield from self._loader

    def close(self) -> None:
        """Let the workers go (the Trainer may keep this object alive a while)."""
        self._loader = None


def ordered_batches(data: TensorData | LazyData, start: int, stop: int, batch_size: int
                    ) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Rows ``start:stop`` of ``data`` in order, ``batch_size`` at a time: slices of tensors in
    memory, batches read by the data's workers for lazy data."""
    if not isinstance(data, LazyData):
        for i in range(start, stop, batch_size):
            j = min(i + batch_size, stop)
            yield data.x[i:j], data.y[i:j], data.t[i:j]
        return
    batches = torch.arange(start, stop).split(batch_size)
    # one batch: a worker would read it while the main process waits, after starting up
    yield from data_loader(data, batches, workers=min(data.num_workers, len(batches) - 1))
