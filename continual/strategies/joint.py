"""Joint training: one training run on the union of all tasks, the upper-bound reference."""

from __future__ import annotations

from continual.data.stream import Stream
from continual.strategies.base import Strategy


class Joint(Strategy):
    """Train once, at the first task, on every task's data; later tasks train nothing.

    Not a continual method (it sees the future): its rows are the reference an incremental
    method tries to reach.
    """

    def tasks_to_train(self, stream: Stream, index: int) -> list[int]:
        return list(range(len(stream))) if index == 0 else []
