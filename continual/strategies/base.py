"""The strategy interface: what a continual-learning method may change in training.

A strategy is a small object handed to :class:`~continual.module.ContinualModule`, not a
Lightning callback: it must be able to choose the training data and add terms to the loss.
Each hook has a do-nothing default, so a method overrides only what it changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor

from continual.data.stream import Stream
from continual.data.tensors import TensorData

if TYPE_CHECKING:
    from continual.module import ContinualModule


class Strategy:
    """Base class; by itself it trains on each new task's data only (fine-tuning)."""

    def tasks_to_train(self, stream: Stream, index: int) -> list[int]:
        """Indices of the tasks whose data forms the training set at task ``index``."""
        return [index]

    def train_data(self, stream: Stream, index: int) -> TensorData | None:
        """Training data for task ``index``; ``None`` skips training for this task."""
        tasks = self.tasks_to_train(stream, index)
        return TensorData.concat([stream[i].train for i in tasks]) if tasks else None

    def val_data(self, stream: Stream, index: int) -> TensorData | None:
        """Validation data matching :meth:`train_data` (for Lightning callbacks and logs)."""
        tasks = self.tasks_to_train(stream, index)
        parts = [stream[i].val for i in tasks if len(stream[i].val)]
        return TensorData.concat(parts) if parts else None

    def on_task_start(self, module: ContinualModule, stream: Stream, index: int) -> None:
        """Called before training task ``index`` (re-initialise weights, snapshot a model)."""

    def on_task_end(self, module: ContinualModule, stream: Stream, index: int) -> None:
        """Called after training task ``index`` (compute importances, fill a buffer)."""

    def loss(self, module: ContinualModule, batch: tuple[Tensor, ...], logits: Tensor,
             loss: Tensor) -> Tensor:
        """The training loss, given the plain cross-entropy ``loss`` on ``batch``."""
        return loss

    def on_before_optimizer_step(self, module: ContinualModule) -> None:
        """Called once gradients are final (unscaled under mixed precision)."""

    def on_train_batch_end(self, module: ContinualModule, batch: tuple[Tensor, ...]) -> None:
        """Called after the optimizer step of each training batch."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume mid-stream."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"
