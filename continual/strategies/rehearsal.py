"""Shared machinery of the strategies that keep a replay buffer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from continual.buffers import Herding, ReplayBuffer, SelectionPolicy, Storage
from continual.data.lazy import LazyData
from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.distributed import gather_rows, shard, world_size
from continual.errors import ConfigError
from continual.strategies.base import Strategy

if TYPE_CHECKING:
    from continual.module import ContinualModule


class Rehearsal(Strategy):
    """A strategy holding one :class:`ReplayBuffer` and drawing replay batches from it.

    Under DDP every rank holds the same memory, the one a single process would fill from
    the same global batches: :meth:`remember` offers the memory every rank's batch (gathered,
    in rank order) and the seeded buffer makes the same choices on every rank. So a
    checkpoint written by rank 0 holds the whole memory and resumes on any number of ranks.
    :meth:`replay` draws the step's replay batch (sized for all ranks together) identically on
    every rank, and each rank trains on its own share: ranks replay different items, and the
    step replays what a single process would. Memories filled from a whole task at once
    (GDumb, A-GEM) see the same data on every rank and need no gathering.

    Args:
        buffer_size: capacity of the memory.
        replay_batch_size: items replayed per training step, all ranks together (``None``: the
            new batch's size times ``replay_ratio``).
        replay_ratio: replay batch size relative to the new batch, when the size is not given.
        policy: which items the memory keeps (default: reservoir, uniform over the stream).
        seed: seeds the memory.
        buffer_device: keep the memory there (e.g. ``cuda``); default: where inputs arrive.
        augment_replay: augment replayed inputs as new ones are (the stream's
            ``train_transform``, a fresh draw per sample and step); ``False``: replay them
            as stored (decoded only).
        storage: how the memory keeps lazy data's items: ``"rows"``, read again when
            replayed (a few bytes an item); ``"copies"`` of the inputs (no reads); ``"auto"``:
            copies up to :data:`~continual.buffers.COPIES_BUDGET`, rows beyond. In-memory
            data is copied (``"rows"`` refuses it).
    """

    augment_replay: bool = True  # for subclasses whose constructor does not take it

    def __init__(self, buffer_size: int = 200, replay_batch_size: int | None = None,
                 replay_ratio: float = 1.0, policy: SelectionPolicy | None = None,
                 seed: int = 0, buffer_device: str | None = None,
                 augment_replay: bool = True, storage: Storage = "auto") -> None:
        if replay_ratio <= 0:
            raise ConfigError(f"replay_ratio={replay_ratio} is invalid; allowed: > 0")
        self.buffer_size, self.replay_batch_size = buffer_size, replay_batch_size
        self.replay_ratio, self.augment_replay = replay_ratio, augment_replay
        self.buffer = ReplayBuffer(buffer_size, policy, seed, buffer_device, storage)

    def replay_size(self, batch_size: int) -> int:
        """Items replayed per step by all ranks together, for ``batch_size`` new ones per rank."""
        if self.replay_batch_size is not None:
            return self.replay_batch_size
        return max(1, round(batch_size * world_size() * self.replay_ratio))

    def on_task_start(self, module: ContinualModule, stream: Stream, index: int) -> None:
        """Attach every lazy task's training data to the memory, which reads the items it
        keeps as rows from there (after a resume too)."""
        for k, task in enumerate(stream):
            if isinstance(task.train, LazyData):
                self.buffer.attach(k, task.train)

    def remember_task(self, stream: Stream, index: int) -> None:
        """Offer the memory task ``index``'s whole training set (memories filled once a task,
        the same on every rank: no gathering; lazy data: its rows kept, or only the rows
        kept read)."""
        data = stream[index].train  # lazy: attached at the task's start (on_task_start)
        self.buffer.add_data(data, task=index if isinstance(data, LazyData) else None)

    def memory_like(self, data: TensorData) -> TensorData:
        """The memory as a dataset beside ``data``: on its device, with its training
        transform and pixel normalization (so the two concatenate, and memory items are
        augmented and decoded as new ones are)."""
        m = self.buffer.data().to(data.x.device)
        return TensorData(m.x, m.y, m.t, data.transform, data.normalization)

    def with_memory(self, data: TensorData) -> TensorData:
        """``data`` followed by the memory's items: exemplar methods train on both."""
        return TensorData.concat([data, self.memory_like(data)]) if len(self.buffer) else data

    def on_task_end(self, module: ContinualModule, stream: Stream, index: int) -> None:
        """With a :class:`~continual.buffers.Herding` memory, the task's items are chosen again
        at its end, in herding order (:meth:`herd`); methods that fill their memory from the
        whole task themselves override this."""
        if isinstance(self.buffer.policy, Herding) and len(self.buffer):
            self.herd(module, stream[index].train)

    @torch.no_grad()
    def herd(self, module: ContinualModule, data: TensorData) -> None:
        """Replace the memory's items of ``data``'s classes by each class's herding picks on
        the network's features now: herding as the selection policy of a method that fills its
        memory batch by batch (which, during the task, keeps random items of each class).

        iCaRL's exemplar choice (Rebuffi et al. 2017), on L2-normalised penultimate features;
        DER's stored logits are the network's at the task's end. The same on every rank.
        """
        from continual.strategies.features import penultimate_and_logits

        features, logits = penultimate_and_logits(module.net, data.x.to(module.device))
        keys = self.buffer.policy.keys(F.normalize(features.float(), dim=1), data.y) \
            - len(data)  # before any random key
        logits = logits if self.buffer.holds_logits else None
        self.buffer.forget_classes(torch.unique(data.y))
        self.buffer.add(data.x, data.y, data.t, logits, keys=keys)

    def remember(self, x: Tensor, y: Tensor, t: Tensor, logits: Tensor | None = None,
                 rows: Tensor | None = None, task: int | None = None) -> None:
        """Offer the memory this step's batch (under DDP, every rank's, so memories agree).

        ``rows``: the batch's rows in task ``task``'s training data (``Step.rows``, lazy data
        only); a memory of rows keeps those and gathers them instead of the inputs.
        """
        places = rows is not None and task is not None and self.buffer.takes_rows(x)
        extra = () if logits is None else (logits,)
        parts = gather_rows(rows if places else x, y, t, *extra)
        if places:
            self.buffer.add(None, *parts[1:], rows=parts[0], task=task)
        else:
            self.buffer.add(*parts)

    def replay(self, n: int, device: torch.device | None = None,
               module: ContinualModule | None = None) -> tuple[Tensor, ...]:
        """This rank's share of ``n`` memory items, drawn identically on every rank.

        With ``module`` the inputs come as its training step takes them
        (:meth:`~continual.module.ContinualModule.training_inputs`: decoded, and augmented
        like new samples unless ``augment_replay`` is off), on ``device`` (default: the
        module's); without it, as stored.
        """
        if device is None and module is not None:
            device = module.device
        drawn = self.buffer.sample(n, device)
        part = shard(len(drawn[0]))
        if part.start != part.stop:  # else fewer items than ranks: everyone replays them all
            drawn = tuple(v[part] for v in drawn)
        if module is None:
            return drawn
        return (module.training_inputs(drawn[0], self.augment_replay), *drawn[1:])

    def memory_bytes(self) -> int:
        """The replay memory's bytes (kept as rows of lazy data: 41 an item whatever the
        inputs' size, plus stored logits)."""
        return self.buffer.nbytes

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])

    def __repr__(self) -> str:
        off = "" if self.augment_replay else ", augment_replay=False"
        return (f"{type(self).__name__}(buffer_size={self.buffer_size}, "
                f"policy={self.buffer.policy!r}{off})")
