"""Labelled data whose inputs stay where they are (files, chunks) and are read batch by batch.

:class:`LazyData` has :class:`~continual.data.tensors.TensorData`'s surface, but only its
labels and task ids are tensors in memory: splitting by class or task, subsets and replay
selection work on those and on row indices into the source, and an input is read only when
a batch holds it (by a ``DataLoader`` with workers, :mod:`continual.data.lazy_loading`). The
few pieces a strategy needs in memory (a Fisher sample) come out of :meth:`LazyData.sample`
and :meth:`LazyData.materialize` as ``TensorData``. A task's fixed view of the inputs (a pixel
permutation, a rotation, a drift concept) is an input map the data holds and applies to each
batch as it is read (:meth:`LazyData.mapped`), so permuted, rotated and drift streams are built
from labels and indices too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

from continual.data.datasets import _as_tensor
from continual.data.input_maps import Identity, InputMap, apply_maps, chain
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
        maps, map_of: row ``i``'s input is ``maps[map_of[i]]`` of what is read (none: as read;
            ``map_of`` defaults to zeros); see :meth:`mapped`.
    """

    def __init__(self, source: Dataset, y: Tensor, t: Tensor | None = None,
                 index: Tensor | None = None, transform: Transform | None = None,
                 normalization: PixelNormalization | None = None, num_workers: int = 0,
                 maps: tuple[InputMap, ...] = (), map_of: Tensor | None = None) -> None:
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
        self.maps = tuple(maps)
        self.map_of = None if not self.maps else (
            torch.zeros_like(self.y) if map_of is None else torch.as_tensor(map_of).long())
        if self.map_of is not None and len(self.map_of) != len(self.y):
            raise ConfigError(f"{len(self.map_of)} input-map ids for {len(self.y)} rows; "
                              "allowed: one per row")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        x = read_input(self.source, int(self.index[i]))
        if self.maps:
            x = self.maps[int(self.map_of[i])](x[None])[0]
        return x, self.y[i], self.t[i]

    def __getitems__(self, rows: Sequence[int] | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The batch at ``rows``: inputs read one by one, stacked, ``[B, *input_shape]``, and
        passed through their rows' input maps.

        Rows are read in ascending source order and put back in the batch's: a chunked store
        (litdata) then opens each chunk once per batch, not at almost every row of a shuffled
        batch (measured: a shuffled 20,000-row subset read 2.2× faster in training).
        """
        rows = torch.as_tensor(rows, dtype=torch.long)
        sources = self.index[rows]
        order = torch.argsort(sources, stable=True)
        read = [read_input(self.source, j) for j in sources[order].tolist()]
        x = torch.stack(read)[torch.argsort(order)] if len(read) else torch.stack(read)
        if self.maps and len(rows):
            x = apply_maps(x, self.maps, self.map_of[rows])
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
              transform: Any = ..., normalization: Any = ..., y: Tensor | None = None
              ) -> LazyData:
        pick = slice(None) if index is None else index
        return LazyData(self.source, self.y[pick] if y is None else y,
                        self.t[pick] if t is None else t, self.index[pick],
                        self.transform if transform is ... else transform,
                        self.normalization if normalization is ... else normalization,
                        self.num_workers, self.maps,
                        None if self.map_of is None else self.map_of[pick])

    def subset(self, index: Tensor | slice) -> LazyData:
        """Rows at a boolean mask, an integer index or a slice (nothing is read)."""
        return self._like(index if isinstance(index, slice) else torch.as_tensor(index))

    def with_labels(self, y: Tensor) -> LazyData:
        """The same rows under new labels (a relabelled concept: nothing is read)."""
        y = torch.as_tensor(y).long()
        if len(y) != len(self):
            raise ConfigError(f"{len(y)} labels for {len(self)} rows; allowed: one per row")
        return self._like(y=y)

    def decoded(self) -> LazyData:
        """:meth:`TensorData.decoded`'s floats, decoded per batch as it is read: the pixel
        normalization joins the input maps (for builders that compute on pixel values)."""
        if self.normalization is None:
            return self
        maps = tuple(chain(m, self.normalization) for m in self.maps or (Identity(),))
        return LazyData(self.source, self.y, self.t, self.index, self.transform, None,
                        self.num_workers, maps, self.map_of)

    def mapped(self, input_map: InputMap, rows: Tensor | None = None) -> LazyData:
        """The same rows with ``input_map`` (deterministic, per sample) applied to the decoded
        inputs of every row, or of ``rows`` only (an index: a drift concept's share).

        The map runs on each batch as it is read, so a permuted or rotated task costs no copy
        of the data and gives the rows the in-memory transform of the same inputs gives."""
        data = self.decoded()
        base = data.maps or (Identity(),)
        which = torch.zeros_like(data.y) if data.map_of is None else data.map_of.clone()
        if rows is None:
            maps = tuple(chain(m, input_map) for m in base)
        else:
            maps = base + tuple(chain(m, input_map) for m in base)
            which[torch.as_tensor(rows, dtype=torch.long)] += len(base)
        return LazyData(data.source, data.y, data.t, data.index, data.transform, None,
                        data.num_workers, maps, which)

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
        maps, map_of = _joined_maps(parts)
        sources = list({id(p.source): p.source for p in parts}.values())
        if len(sources) == 1:
            index = torch.cat([p.index for p in parts])
        else:
            offsets = dict(zip(map(id, sources), [0, *_cumulative(map(len, sources))]))
            index = torch.cat([p.index + offsets[id(p.source)] for p in parts])
        source = sources[0] if len(sources) == 1 else ConcatDataset(sources)
        return LazyData(source, torch.cat([p.y for p in parts]), torch.cat([p.t for p in parts]),
                        index, first.transform, first.normalization,
                        max(p.num_workers for p in parts), maps, map_of)

    def __repr__(self) -> str:
        maps = f", maps={list(self.maps)}" if self.maps else ""
        return (f"LazyData({len(self)} rows of {type(self.source).__name__}, "
                f"num_workers={self.num_workers}{maps})")


def _joined_maps(parts: Sequence[LazyData]) -> tuple[tuple[InputMap, ...], Tensor | None]:
    """The input maps of ``parts`` as one tuple (each map once) and each row's id in it."""
    if not any(p.maps for p in parts):
        return (), None
    position: dict[int, int] = {}
    maps: list[InputMap] = []
    ids = []
    for p in parts:
        own = p.maps or (Identity(),)
        for m in own:
            if id(m) not in position:
                position[id(m)] = len(maps)
                maps.append(m)
        lookup = torch.tensor([position[id(m)] for m in own])
        ids.append(lookup[p.map_of] if p.map_of is not None else lookup[0].expand(len(p)))
    return tuple(maps), torch.cat(ids)


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


# Lazy test sets up to this size are read into memory once per run: every task's test set is
# scored after every task (T² reads of each), and small ones are what a run scores most.
EVAL_CACHE_BYTES = 256 * 2**20


def held_for_evaluation(data: TensorData | LazyData, max_bytes: int = EVAL_CACHE_BYTES
                        ) -> TensorData | LazyData:
    """``data`` read into memory when it is lazy and at most ``max_bytes`` (its inputs as
    stored), else as it is: the same values either way, so the same accuracies."""
    if not isinstance(data, LazyData) or len(data) == 0:
        return data
    one = first_inputs(data)
    if len(data) * one[0].numel() * one.element_size() > max_bytes:
        return data
    return data.materialize()


def concat_data(parts: Sequence[TensorData | LazyData]) -> TensorData | LazyData:
    """:meth:`TensorData.concat` or :meth:`LazyData.concat`, by what ``parts`` are."""
    lazy = [isinstance(p, LazyData) for p in parts]
    if all(lazy):
        return LazyData.concat(parts)
    if any(lazy):
        raise ConfigError("cannot concatenate lazy data with in-memory data; allowed: parts "
                          "of one kind (data.materialize() makes lazy data in-memory)")
    return TensorData.concat(parts)
