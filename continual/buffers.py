"""Replay memories: fixed capacity, preallocated tensors, vectorised updates, seeded.

A memory keeps, within each group's quota, the items with the smallest keys
(:mod:`continual.selection`: reservoir, class- or task-balanced, herding). An update is one
sort over ``capacity + batch`` keys, and only the newly kept items are written.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from continual.data.lazy import LazyData, first_inputs
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.selection import (
    ClassBalanced,
    Herding,
    Reservoir,
    SelectionPolicy,
    TaskBalanced,
    bottom_k,
    group_quotas,
    herding_order,
    smallest,
)

__all__ = ["COPIES_BUDGET", "ClassBalanced", "Herding", "ReplayBuffer", "Reservoir",
           "SelectionPolicy", "Storage", "TaskBalanced", "group_quotas", "herding_order"]


Storage = Literal["auto", "copies", "rows"]
STORAGES = ("auto", "copies", "rows")
COPIES_BUDGET = 1 << 30
"""Bytes of input copies beyond which an ``"auto"`` memory of lazy data keeps rows (1 GiB):
copies replay without reading anything (ER(2,000) of 64×64 images: 24 MiB, trained 2× faster
from litdata chunks than when each replayed row is read back), rows bound the memory."""


class ReplayBuffer:
    """Fixed-capacity memory of ``(x, y, task id[, logits])``.

    Inputs keep their dtype (uint8 images stay uint8). Storage is allocated at the first
    :meth:`add`, on ``device`` (default: where the first inputs are).

    An item of lazy data (inputs on disk, :class:`~continual.data.lazy.LazyData`) can be kept
    as its place instead of a copy: ``(task, row)``, the row of that task's training data,
    read back when the item is drawn (the task's data is :meth:`attach`-ed). The memory then
    holds a few bytes an item whatever the inputs' size: a memory of 20,000 ImageNet-sized
    images would hold 3 GB of copies. The same items are kept and drawn either way.

    Args:
        capacity: maximum number of items.
        policy: which items to keep (:class:`Reservoir`, :class:`ClassBalanced`,
            :class:`TaskBalanced`).
        seed: seeds keys and replay draws.
        device: where to keep the tensors (``"cuda"`` keeps replay on the accelerator).
        storage: ``"rows"`` keeps places, ``"copies"`` the inputs themselves; ``"auto"``:
            places when the first items offered come with them (lazy data) and copies of a
            full memory would exceed :data:`COPIES_BUDGET`, else copies.
    """

    def __init__(self, capacity: int, policy: SelectionPolicy | None = None, seed: int = 0,
                 device: str | torch.device | None = None, storage: Storage = "auto") -> None:
        if capacity < 1:
            raise ConfigError(f"capacity={capacity} is invalid; allowed: 1 or more")
        if storage not in STORAGES:
            raise ConfigError(f"storage={storage!r} is invalid; allowed: "
                              + ", ".join(repr(v) for v in STORAGES))
        self.capacity, self.seed, self.storage = capacity, seed, storage
        self._views: dict[int, LazyData] = {}  # task → its training data, for rows
        self.policy = policy if policy is not None else Reservoir()
        self.device = None if device is None else torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.n_seen = 0
        self._store: dict[str, Tensor] = {}
        self._count = 0  # valid items, kept as a number: strategies ask at every step

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:  # settings only: a run's fingerprint includes it
        return f"ReplayBuffer(capacity={self.capacity}, policy={self.policy!r}, seed={self.seed})"

    def _allocate(self, x: Tensor | None, logits: Tensor | None, device: torch.device) -> None:
        """Empty storage: inputs like ``x``, or places when ``x`` is ``None``."""
        device = self.device or device
        cap = self.capacity
        inputs = {"task": torch.zeros(cap, dtype=torch.long),
                  "row": torch.zeros(cap, dtype=torch.long)} if x is None else {
            "x": torch.zeros((cap, *x.shape[1:]), dtype=x.dtype, device=device)}
        self._store = {
            **inputs,
            "y": torch.zeros(cap, dtype=torch.long, device=device),
            "t": torch.zeros(cap, dtype=torch.long, device=device),
            "key": torch.full((cap,), float("inf"), dtype=torch.float64),
            "valid": torch.zeros(cap, dtype=torch.bool),
        }
        if logits is not None:
            self._store["logits"] = torch.zeros((cap, logits.shape[1]), dtype=logits.dtype,
                                                device=device)

    @property
    def holds_rows(self) -> bool:
        """Whether items are kept as ``(task, row)`` places rather than copies."""
        return "row" in self._store

    def takes_rows(self, like: Tensor | None = None) -> bool:
        """Whether items offered with their places are kept as places: always with
        ``storage="rows"``, never with ``"copies"``; with ``"auto"``, when copies of a full
        memory of inputs like ``like`` (a batch) would take more than :data:`COPIES_BUDGET`.
        Decided at the first offer."""
        if self._store:
            return self.holds_rows
        if self.storage != "auto":
            return self.storage == "rows"
        return like is None or self.capacity * like[0].numel() * like.element_size() \
            > COPIES_BUDGET

    def attach(self, task: int, data: LazyData) -> None:
        """Where the places of ``task``'s items are read from: its training data (again after
        a resume, which restores the places only)."""
        self._views[task] = data

    @torch.no_grad()
    def add(self, x: Tensor | None, y: Tensor, t: Tensor, logits: Tensor | None = None,
            keys: Tensor | None = None, rows: Tensor | None = None, task: int | None = None
            ) -> int:
        """Offer a batch to the memory; returns how many of its items were kept.

        ``keys`` ``[B]`` rank the items (the smallest kept first, e.g. :meth:`Herding.keys`);
        by default each draws a uniform random key. ``rows`` ``[B]`` (with ``task``) are the
        items' rows in task ``task``'s attached training data: a memory that keeps places
        keeps those (``x`` may then be ``None``).
        """
        places = self._keeps_places(rows is not None and task is not None, x)
        if not places and x is None:
            raise ConfigError("this replay memory keeps copies and was offered rows without "
                              "inputs; allowed: inputs with the rows, or a new memory with "
                              "storage='rows'")
        if not self._store:
            self._allocate(None if places else x, logits, y.device)
        new_keys, keep_old, keep_new = self._choose(y, t, keys)
        if keep_new is None:
            return 0
        src = keep_new.to(y.device)
        kept_logits = None if logits is None else logits[src]
        kept = (torch.full((len(src),), task), rows[src].cpu()) if places else x[src]
        return self._write(keep_old, keep_new, new_keys, kept, y[src], t[src], kept_logits)

    @torch.no_grad()
    def add_data(self, data: TensorData | LazyData, task: int | None = None) -> int:
        """Offer every row of ``data``, as :meth:`add` would the whole of it at once: the same
        items kept, the same draws. Lazy data is chosen from by labels alone: the rows kept
        are read (at most ``capacity``, not the whole task), or, when ``data`` is task
        ``task``'s attached training data and places are kept, not read at all."""
        if not isinstance(data, LazyData):
            return self.add(data.x, data.y, data.t)
        if len(data) == 0:
            return 0
        like = None if self._store else first_inputs(data)  # [1, *input_shape]
        places = self._keeps_places(task is not None, like)
        if not self._store:
            self._allocate(None if places else like, None, data.y.device)
        if places:  # every row offered with its place: nothing is read
            return self.add(None, data.y, data.t, rows=torch.arange(len(data)), task=task)
        new_keys, keep_old, keep_new = self._choose(data.y, data.t, None)
        if keep_new is None:
            return 0
        x, y, t = data.read(keep_new)
        return self._write(keep_old, keep_new, new_keys, x, y, t, None)

    def _keeps_places(self, offered: bool, like: Tensor | None) -> bool:
        """Whether this offer is kept as places (``offered``: the items come with them;
        ``like``: their inputs, if at hand)."""
        places = self.takes_rows(like) if offered or self.storage == "rows" else \
            self.holds_rows
        if places and not offered:
            raise ConfigError("this replay memory keeps rows of lazy data and was offered "
                              "inputs without their rows; allowed: storage='copies' or 'auto' "
                              "(rows come only with a task's own lazy training data)")
        return places

    def _choose(self, y: Tensor, t: Tensor, keys: Tensor | None
                ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """New items' keys, and which old items stay (mask over the valid ones) and which new
        ones enter (indices); ``None`` when no new item enters."""
        s = self._store
        if keys is None:
            new_keys = torch.rand(len(y), generator=self.generator, dtype=torch.float64)
        else:
            new_keys = keys.detach().to("cpu", torch.float64)
        self.n_seen += len(y)
        one_group = type(self.policy).groups is SelectionPolicy.groups
        if one_group and self._count == self.capacity and new_keys.min() >= s["key"].max():
            return new_keys, None, None  # full, every new key above the kept: cheaply
        old = s["valid"].nonzero().flatten()
        keys = torch.cat([s["key"][old], new_keys])
        if one_group:  # bottom-k of a single group: the smallest keys, no sorting by group
            keep = smallest(keys, self.capacity)
        else:
            groups = self.policy.groups(torch.cat([s["y"][old].cpu(), y.cpu()]),
                                        torch.cat([s["t"][old].cpu(), t.cpu()]))
            keep = bottom_k(keys, groups, self.capacity)
        return new_keys, keep[: len(old)], keep[len(old):].nonzero().flatten()

    def _write(self, keep_old: Tensor, keep_new: Tensor, new_keys: Tensor,
               x: Tensor | tuple[Tensor, Tensor], y: Tensor, t: Tensor,
               logits: Tensor | None) -> int:
        """Drop the old items not kept; store the kept new ones ``x`` (inputs, or ``(task,
        row)`` places), ``y, t[, logits]`` (one row each, in ``keep_new``'s order) in the free
        slots."""
        s = self._store
        old = s["valid"].nonzero().flatten()
        s["valid"][old[~keep_old]] = False
        s["key"][old[~keep_old]] = float("inf")
        slots = (~s["valid"]).nonzero().flatten()[: len(keep_new)]
        dst = slots.to(s["y"].device)
        if isinstance(x, tuple):
            s["task"][slots], s["row"][slots] = x[0].cpu(), x[1].cpu()
        else:
            s["x"][dst] = x.to(dst.device)
        s["y"][dst] = y.to(dst.device)
        s["t"][dst] = t.to(dst.device)
        if "logits" in s and logits is not None:
            s["logits"][dst] = logits.detach().to(dst.device, s["logits"].dtype)
        s["key"][slots] = new_keys[keep_new]
        s["valid"][slots] = True
        self._count = int(keep_old.sum()) + len(keep_new)
        return len(keep_new)

    @property
    def holds_logits(self) -> bool:
        """Whether items carry stored logits (DER's memories)."""
        return "logits" in self._store

    @torch.no_grad()
    def forget_classes(self, classes: Tensor) -> None:
        """Drop every item of ``classes``: their room is free for what is offered next."""
        if not self._store:
            return
        s = self._store
        drop = s["valid"] & torch.isin(s["y"].cpu(), classes.cpu())
        s["valid"][drop] = False
        s["key"][drop] = float("inf")
        self._count = int(s["valid"].sum())

    @property
    def nbytes(self) -> int:
        """Bytes the memory holds (inputs as stored: uint8 images stay a byte a pixel; places:
        two integers an item)."""
        return sum(v.numel() * v.element_size() for v in self._store.values())

    def sample(self, n: int, device: torch.device | None = None) -> tuple[Tensor, ...]:
        """``min(n, len)`` distinct items drawn uniformly: ``(x, y, t[, logits])``."""
        valid = self._store["valid"].nonzero().flatten()
        pick = valid[torch.randperm(len(valid), generator=self.generator)[:n]]
        return self._gather(pick, device)

    def data(self) -> TensorData:
        """Everything in the memory, as a dataset (GDumb trains on this)."""
        x, y, t = self._gather(self._store["valid"].nonzero().flatten(), None)[:3]
        return TensorData(x, y, t)

    def _gather(self, index: Tensor, device: torch.device | None) -> tuple[Tensor, ...]:
        s = self._store
        names = ["y", "t"] + (["logits"] if "logits" in s else [])
        idx = index.to(s["y"].device)
        # read rows come to the CPU: to where the memory keeps its labels, as copies would be
        x = self._read(index).to(s["y"].device) if self.holds_rows else s["x"][idx]
        return tuple(v.to(device) if device else v for v in (x, *(s[k][idx] for k in names)))

    def items(self, slots: Tensor) -> tuple[Tensor, ...]:
        """The items in storage ``slots`` (as :meth:`state_dict`'s ``store`` numbers them):
        ``(x, y, t[, logits])``, inputs read back for a memory of rows."""
        return self._gather(slots, None)

    def _read(self, index: Tensor) -> Tensor:
        """The inputs of the items at ``index`` (kept as places), read from their tasks' data,
        in ``index``'s order."""
        tasks, rows = self._store["task"][index], self._store["row"][index]
        parts, where = [], []
        for task in torch.unique(tasks).tolist():
            if task not in self._views:
                raise ConfigError(f"the replay memory holds rows of task {task} but not its "
                                  "data; allowed: attach(task, data) first (Rehearsal does "
                                  "this at every task's start)")
            mine = (tasks == task).nonzero().flatten()
            parts.append(self._views[task].read(rows[mine])[0])
            where.append(mine)
        if not parts:  # no items: an empty batch shaped as the attached data's inputs
            view = next(iter(self._views.values()), None)
            return torch.zeros(0) if view is None else first_inputs(view)[:0]
        x = torch.empty((len(index), *parts[0].shape[1:]), dtype=parts[0].dtype)
        for part, mine in zip(parts, where):
            x[mine] = part
        return x

    def class_counts(self, n_classes: int) -> Tensor:
        """Items per class, ``[n_classes]``."""
        if not self._store:
            return torch.zeros(n_classes, dtype=torch.long)
        return torch.bincount(self._store["y"][self._store["valid"]].cpu(), minlength=n_classes)

    def state_dict(self) -> dict[str, Any]:
        return {"store": dict(self._store), "n_seen": self.n_seen,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._store = dict(state["store"])
        self._count = int(self._store["valid"].sum()) if self._store else 0
        if self.device is not None:
            for k in ("x", "y", "t", "logits"):  # places stay on the CPU
                if k in self._store:
                    self._store[k] = self._store[k].to(self.device)
        self.n_seen = int(state["n_seen"])
        self.generator.set_state(state["generator"])
