"""Combine strategies by configuration, e.g. EWC together with replay."""

from __future__ import annotations

from typing import Any

from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.strategies.base import Strategy


class Compose(Strategy):
    """Run several strategies' hooks in order; their loss terms add up.

    The training data is the first member's choice. Each member sees only its own state, so
    none reaches into another's internals. A member that replaces the loss rather than adding
    to it (ER-ACE) must come first.

    Args:
        strategies: the members, e.g. ``[EWC(lam=100), ExperienceReplay(buffer_size=200)]``.
    """

    def __init__(self, strategies: list[Strategy]) -> None:
        if not strategies:
            raise ConfigError("strategies=[] is invalid; allowed: one or more strategies")
        self.strategies = list(strategies)

    def tasks_to_train(self, stream: Stream, index: int) -> list[int]:
        return self.strategies[0].tasks_to_train(stream, index)

    def train_data(self, stream: Stream, index: int) -> TensorData | None:
        return self.strategies[0].train_data(stream, index)

    def val_data(self, stream: Stream, index: int) -> TensorData | None:
        return self.strategies[0].val_data(stream, index)

    def on_task_start(self, module, stream, index):
        for s in self.strategies:
            s.on_task_start(module, stream, index)

    def on_task_end(self, module, stream, index):
        for s in self.strategies:
            s.on_task_end(module, stream, index)

    def loss(self, module, step, loss):
        for s in self.strategies:
            loss = s.loss(module, step, loss)
        return loss

    def predict(self, module, x, t, logits):
        for s in self.strategies:
            logits = s.predict(module, x, t, logits)
        return logits

    def on_before_optimizer_step(self, module):
        for s in self.strategies:
            s.on_before_optimizer_step(module)

    def after_step(self, module, step):
        for s in self.strategies:
            s.after_step(module, step)

    def memory_bytes(self) -> int:
        return sum(s.memory_bytes() for s in self.strategies)

    def state_dict(self) -> dict[str, Any]:
        return {str(i): s.state_dict() for i, s in enumerate(self.strategies)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, s in enumerate(self.strategies):
            s.load_state_dict(state[str(i)])

    def __repr__(self) -> str:
        return f"Compose({self.strategies!r})"
