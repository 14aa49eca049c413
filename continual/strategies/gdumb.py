"""GDumb (Prabhu et al. 2020): retrain from scratch on a class-balanced memory only."""

from __future__ import annotations

from continual.buffers import ClassBalanced, Storage
from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.strategies.rehearsal import Rehearsal


class GDumb(Rehearsal):
    """Keep a class-balanced sample of everything seen; at each task, train a fresh network
    (its initial weights) on that memory and nothing else.

    Args:
        buffer_size: memory capacity, shared equally among the classes seen.
        seed: seeds the memory.
        buffer_device, storage: as in :class:`~continual.strategies.rehearsal.Rehearsal`.
    """

    def __init__(self, buffer_size: int = 500, seed: int = 0,
                 buffer_device: str | None = None, storage: Storage = "auto") -> None:
        super().__init__(buffer_size, policy=ClassBalanced(), seed=seed,
                         buffer_device=buffer_device, storage=storage)

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        super().on_task_start(module, stream, index)  # lazy tasks' data for the memory
        self.remember_task(stream, index)
        module.reset_net()

    def train_data(self, stream: Stream, index: int) -> TensorData | None:
        return self.buffer.data()

    def tasks_to_train(self, stream: Stream, index: int) -> list[int]:
        return list(range(index + 1))  # validation on every task seen
