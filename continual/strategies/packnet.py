"""PackNet (Mallya & Lazebnik 2018): iterative pruning packs tasks into one network."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call

from continual.data.stream import Stream
from continual.errors import ConfigError
from continual.strategies.base import Strategy

FREE = 2**30  # the owner of a weight no task has kept yet


def prune_mask(weight: Tensor, free: Tensor, ratio: float) -> Tensor:
    """Which ``free`` entries of ``weight`` to keep: the ``round((1 − ratio) · n_free)`` of
    largest magnitude (ties: the first in flattened order); a bool tensor like ``weight``."""
    n_keep = round((1 - ratio) * int(free.sum()))
    magnitude = weight.detach().abs().flatten().masked_fill(~free.flatten(), -1.0)
    keep = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
    keep[torch.sort(magnitude, descending=True, stable=True).indices[:n_keep]] = True
    return keep.view_as(weight)


class PackNet(Strategy):
    """Each task trains the weights no earlier task kept, prunes them by magnitude, retrains
    the survivors and freezes them; task ``t`` is then evaluated with the weights of tasks
    ``≤ t`` only. Those never change again: zero forgetting in task-incremental streams.

    Prunable: every parameter of two or more dimensions (linear and convolution weights),
    per layer as in the paper; the others (biases, norms) train on the first task only. The
    prune happens at the first step of the epoch ``⌊max_epochs · (1 − retrain_fraction)⌋``
    (at the task's end when that is 0 or the fit stops before it); the remaining epochs
    retrain what was kept. Frozen and released weights are restored after every optimizer
    step, so momentum and weight decay cannot move them.

    Defaults: ``prune_ratio = 0.5`` (the paper reports 0.5 and 0.75; Avalanche asks for it),
    half of the epochs retraining (the paper: 10 epochs after the prune). A net with batch
    norm still updates its running statistics on later tasks (the paper keeps them per task).

    Args:
        prune_ratio: share of a task's free weights released for later tasks.
        retrain_fraction: share of each task's epochs spent retraining after the prune.
    """

    def __init__(self, prune_ratio: float = 0.5, retrain_fraction: float = 0.5) -> None:
        if not 0.0 <= prune_ratio < 1.0 or not 0.0 <= retrain_fraction < 1.0:
            raise ConfigError(f"prune_ratio={prune_ratio}, retrain_fraction={retrain_fraction} "
                              "are invalid; allowed: both in [0, 1)")
        self.prune_ratio, self.retrain_fraction = prune_ratio, retrain_fraction
        self._owner: dict[str, Tensor] = {}  # prunable name -> owning task (FREE: none)
        self._task = 0
        self._pruned = False
        self._fixed: dict[str, Tensor] = {}  # the values frozen and released entries keep
        self._keep: dict[str, Tensor] = {}  # this task's weights, once pruned

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        if stream.scenario != "task":
            raise ConfigError(f"PackNet on scenario={stream.scenario!r} is invalid; allowed: "
                              "'task' (it picks weights by the task identity)")
        self._task, self._pruned = index, False
        if not self._owner:
            self._owner = {n: torch.full(p.shape, FREE, dtype=torch.long, device=p.device)
                           for n, p in module.net.named_parameters() if p.dim() >= 2}
        self._fixed = {n: p.detach().clone() for n, p in module.net.named_parameters()}

    def _trainable(self, name: str) -> Tensor | bool:
        if name not in self._owner:
            return self._task == 0
        return self._keep[name] if self._pruned else self._owner[name] == FREE

    def on_before_optimizer_step(self, module) -> None:
        for n, p in module.net.named_parameters():
            if p.grad is not None:
                p.grad.mul_(self._trainable(n))

    def after_step(self, module, step) -> None:
        with torch.no_grad():
            for n, p in module.net.named_parameters():
                p.copy_(torch.where(torch.as_tensor(self._trainable(n), device=p.device), p,
                                    self._fixed[n]))
        epochs = module.task_epochs or 1
        if not self._pruned and 0 < math.floor(epochs * (1 - self.retrain_fraction)) <= \
                module.task_epoch:
            self._prune(module)

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        if not self._pruned:
            self._prune(module)
        for n, keep in self._keep.items():
            self._owner[n] = torch.where(keep, index, self._owner[n])

    @torch.no_grad()
    def _prune(self, module) -> None:
        """Keep the largest free weights of each layer for this task, zero the rest (freed
        for later tasks); they then stay at zero until this task ends."""
        for n, p in module.net.named_parameters():
            if n in self._owner:
                free = self._owner[n] == FREE
                self._keep[n] = prune_mask(p, free, self.prune_ratio)
                p.masked_fill_(free & ~self._keep[n], 0.0)
            self._fixed[n] = p.detach().clone()
        self._pruned = True

    def predict(self, module, x, t, logits):
        if t is None or not self._owner:
            return logits
        out = logits.clone()
        params = dict(module.net.named_parameters())
        for task in torch.unique(t).tolist():  # each task sees the weights of tasks <= it
            rows = t == task
            weights = {n: p * (self._owner[n] <= task) if n in self._owner else p
                       for n, p in params.items()}
            out[rows] = functional_call(module.net, weights, (x[rows],)).to(out.dtype)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"owner": self._owner, "task": self._task, "pruned": self._pruned,
                "fixed": self._fixed, "keep": self._keep}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._owner, self._fixed = dict(state["owner"]), dict(state["fixed"])
        self._keep = dict(state["keep"])
        self._task, self._pruned = int(state["task"]), bool(state["pruned"])
