"""Full retraining: train on all data seen so far at every task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from continual.data.stream import Stream
from continual.strategies.base import Strategy

if TYPE_CHECKING:
    from continual.module import ContinualModule


class FullRetrain(Strategy):
    """Retrain on the union of every task seen so far; remembers, but its cost grows per task.

    Args:
        from_scratch: re-initialise the network to its initial weights before each task, as a
            production retrain from zero would; ``False`` warm-starts from the current weights.
    """

    def __init__(self, from_scratch: bool = True) -> None:
        self.from_scratch = from_scratch

    def tasks_to_train(self, stream: Stream, index: int) -> list[int]:
        return list(range(index + 1))

    def on_task_start(self, module: ContinualModule, stream: Stream, index: int) -> None:
        if self.from_scratch:
            module.reset_net()
