"""The strategy interface: what a continual-learning method may change in training.

A strategy is a small object handed to :class:`~continual.module.ContinualModule`, not a
Lightning callback: it must be able to choose the training data and add terms to the loss.
Each hook has a do-nothing default, so a method overrides only what it changes; everything a
hook needs comes in as its arguments (see :mod:`continual.strategies` for the contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor

from continual.data.stream import Stream
from continual.data.tensors import TensorData

if TYPE_CHECKING:
    from continual.module import ContinualModule


@dataclass(frozen=True)
class Step:
    """One training batch as the strategy's step hooks see it.

    Attributes:
        x, y, t: inputs, labels and task ids of the batch.
        raw_logits: the network's outputs ``[B, C]`` over every class (for distillation).
        logits: ``raw_logits`` with classes outside each sample's task suppressed
            (task-incremental streams; the same tensor otherwise): what the loss is on.
        task: index of the task in training.
        inputs: ``x`` as the network took it (decoded, augmented): what a second network
            (LwF's or iCaRL's old one) must see to compare outputs; ``x`` itself when
            omitted (a step built by hand).
        rows: for lazy data, each sample's row in the task's training data (a replay memory
            can keep those instead of copies of the inputs); ``None`` for data in memory.
    """

    x: Tensor
    y: Tensor
    t: Tensor
    raw_logits: Tensor
    logits: Tensor
    task: int
    inputs: Tensor | None = None
    rows: Tensor | None = None

    def __post_init__(self) -> None:
        if self.inputs is None:
            object.__setattr__(self, "inputs", self.x)


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

    def loss(self, module: ContinualModule, step: Step, loss: Tensor) -> Tensor:
        """The training loss, given the plain cross-entropy ``loss`` on ``step.logits``.

        Pure with respect to the strategy's memory: what a step adds to a memory belongs in
        :meth:`after_step`, which runs once the step's update is done.
        """
        return loss

    def predict(self, module: ContinualModule, x: Tensor, t: Tensor | None, logits: Tensor
                ) -> Tensor:
        """Class scores ``[B, C]`` at evaluation (the module in eval mode), given the network's
        ``logits`` for inputs ``x`` and task ids ``t``; the argmax is the prediction. Default:
        the logits themselves; iCaRL returns nearest-mean-of-exemplars scores."""
        return logits

    def on_before_optimizer_step(self, module: ContinualModule) -> None:
        """Called once gradients are final (unscaled under mixed precision)."""

    def after_step(self, module: ContinualModule, step: Step) -> None:
        """Called after each training batch's optimizer step: update memories and running
        statistics here."""

    def memory_bytes(self) -> int:
        """Bytes of data the strategy keeps for later tasks (a replay memory, anchors and
        importances), reported with each task's cost; 0 by default."""
        return 0

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume mid-stream."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"
