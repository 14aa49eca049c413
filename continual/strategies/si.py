"""Synaptic Intelligence (Zenke et al. 2017)."""

from __future__ import annotations

from typing import Any

import torch

from continual.compat import foreach_addcmul_, foreach_copy, foreach_sub
from continual.data.stream import Stream
from continual.strategies.importance import Params, trainable
from continual.strategies.regularizer import QuadraticRegularizer


class SI(QuadraticRegularizer):
    """Importance from each weight's contribution to the loss decrease along its path.

    During a task, ``ω += −g · Δθ`` at every step (``g``: the gradient that was applied);
    at its end ``Ω += max(0, ω / (Δ² + ξ))`` with ``Δ`` the weight change over the task (a
    negative contribution, a weight that moved uphill, is clipped so the penalty stays one).

    Under DDP nothing needs reducing: ``g`` is the gradient after DDP's all-reduce and the
    weights are the same on every rank, so every rank accumulates the same ``ω``.

    Args:
        lam: penalty strength (``c`` in the paper).
        xi: damping ξ for weights that barely moved.
    """

    def __init__(self, lam: float = 1.0, xi: float = 0.1) -> None:
        super().__init__(lam, merge=True, decay=1.0)
        self.xi = xi
        self._start: Params = {}
        self._omega: Params = {}
        self._grad: Params = {}
        self._before: Params = {}

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        self._start = trainable(module.net)
        self._omega = {n: torch.zeros_like(p) for n, p in self._start.items()}

    def on_before_optimizer_step(self, module) -> None:
        super().on_before_optimizer_step(module)  # the penalty's gradient first: ω sees the step
        named = dict(module.net.named_parameters())
        names = [n for n in self._omega if named[n].grad is not None]
        # The gradient tensors themselves (no copy): the optimizer only reads them, and
        # zero_grad replaces them; the weights are copied, the step changes them in place.
        self._grad = {n: named[n].grad for n in names}
        copies = foreach_copy([named[n].detach() for n in names])
        self._before = dict(zip(names, copies))

    def after_step(self, module, step) -> None:
        if not self._grad:
            return
        named = dict(module.net.named_parameters())
        names = list(self._grad)
        deltas = foreach_sub([named[n].detach() for n in names],
                                    [self._before[n] for n in names])
        foreach_addcmul_([self._omega[n] for n in names],
                                [self._grad[n] for n in names], deltas, value=-1.0)
        self._grad = {}

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        end = trainable(module.net)
        importance = {n: (self._omega[n] / ((end[n] - self._start[n]) ** 2 + self.xi))
                      .clamp_min(0.0) for n in end}
        self.consolidate(end, importance)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "start": self._start, "omega": self._omega}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._start, self._omega = state["start"], state["omega"]
