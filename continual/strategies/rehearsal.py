"""Shared machinery of the strategies that keep a replay buffer."""

from __future__ import annotations

from typing import Any

from continual.buffers import ReplayBuffer, SelectionPolicy
from continual.strategies.base import Strategy


class Rehearsal(Strategy):
    """A strategy holding one :class:`ReplayBuffer` and drawing replay batches from it.

    Args:
        buffer_size: capacity of the memory.
        replay_batch_size: items replayed per training step (``None``: the new batch's size
            times ``replay_ratio``).
        replay_ratio: replay batch size relative to the new batch, when the size is not given.
        policy: which items the memory keeps (default: reservoir, uniform over the stream).
        seed: seeds the memory.
        buffer_device: keep the memory there (e.g. ``cuda``); default: where inputs arrive.
    """

    def __init__(self, buffer_size: int = 200, replay_batch_size: int | None = None,
                 replay_ratio: float = 1.0, policy: SelectionPolicy | None = None,
                 seed: int = 0, buffer_device: str | None = None) -> None:
        if replay_ratio <= 0:
            raise ValueError(f"replay_ratio={replay_ratio} is invalid; allowed: > 0")
        self.buffer_size, self.replay_batch_size = buffer_size, replay_batch_size
        self.replay_ratio = replay_ratio
        self.buffer = ReplayBuffer(buffer_size, policy, seed, buffer_device)

    def replay_size(self, batch_size: int) -> int:
        if self.replay_batch_size is not None:
            return self.replay_batch_size
        return max(1, round(batch_size * self.replay_ratio))

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(buffer_size={self.buffer_size}, "
                f"policy={self.buffer.policy!r})")
