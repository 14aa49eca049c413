"""Maximally Interfered Retrieval (Aljundi et al. 2019)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from continual.buffers import SelectionPolicy, Storage
from continual.errors import ConfigError
from continual.strategies.rehearsal import Rehearsal

Params = dict[str, Tensor]


@torch.no_grad()
def interference(losses: Callable[[Params], Tensor], params: Params, grads: Params,
                 lr: float) -> Tensor:
    """Each candidate's loss increase ``[N]`` under the virtual SGD step ``θ − lr·g``:
    ``losses(θ − lr·g) − losses(θ)``, ``losses`` mapping weights to per-candidate losses."""
    virtual = {n: p - lr * grads[n] if n in grads else p for n, p in params.items()}
    return losses(virtual) - losses(params)


def most_interfered(scores: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` largest ``scores`` (ties: the lower index first)."""
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[:k]


class MIR(Rehearsal):
    """Experience replay whose replay batch is the memory items the coming update hurts most.

    Each step draws ``subsample`` candidates from the memory, takes a virtual SGD step
    ``θ' = θ − lr·∇L(new batch)`` and replays the ``replay_batch_size`` candidates whose loss
    rises most from ``θ`` to ``θ'`` (:func:`interference`); the loss is then
    ``CE(new) + CE(retrieved)``. The memory is a reservoir offered every new batch, as ER's.

    Defaults: 10 items retrieved from 50 candidates (the paper's online runs replay 10 per
    step; Avalanche's plugin draws 200 candidates); the virtual step's learning rate is the
    optimizer's first group's (``lr=None``), as in the paper and Avalanche (under Adam the real
    step differs; to first order the ranking, ``−lr·g·g_i``, does not depend on lr).
    Candidates are scored in the net's training mode. Under DDP each rank retrieves from
    its share of the candidates with its own batch's gradient.

    Args:
        buffer_size: memory capacity.
        subsample: candidates C drawn from the memory each step, all ranks together.
        replay_batch_size: items retrieved (and replayed) per step.
        lr: the virtual step's learning rate (``None``: the optimizer's).
        seed, buffer_device, augment_replay, policy, storage: as in
            :class:`~continual.strategies.rehearsal.Rehearsal` (default: a reservoir memory).
    """

    def __init__(self, buffer_size: int = 200, subsample: int = 50, replay_batch_size: int = 10,
                 lr: float | None = None, seed: int = 0, buffer_device: str | None = None,
                 augment_replay: bool = True, policy: SelectionPolicy | None = None,
                 storage: Storage = "auto") -> None:
        if not 1 <= replay_batch_size <= subsample:
            raise ConfigError(f"replay_batch_size={replay_batch_size} is invalid for subsample="
                              f"{subsample}; allowed: 1 <= replay_batch_size <= subsample")
        if lr is not None and lr <= 0:
            raise ConfigError(f"lr={lr} is invalid; allowed: > 0 or null (the optimizer's)")
        super().__init__(buffer_size, replay_batch_size, policy=policy, seed=seed,
                         buffer_device=buffer_device, augment_replay=augment_replay,
                         storage=storage)
        self.subsample, self.lr = subsample, lr

    def loss(self, module, step, loss):
        if not len(self.buffer):
            return loss
        cx, cy, ct = self.replay(self.subsample, step.x.device, module)[:3]
        params = {n: p for n, p in module.net.named_parameters() if p.requires_grad}
        grads = torch.autograd.grad(loss, list(params.values()), retain_graph=True,
                                    allow_unused=True)
        grads = {n: g for n, g in zip(params, grads) if g is not None}

        def losses(weights: Params) -> Tensor:
            logits = module.masked(functional_call(module.net, weights, (cx,)), ct)
            return F.cross_entropy(logits, cy, reduction="none")

        lr = self.lr if self.lr is not None else module.trainer.optimizers[0].param_groups[0]["lr"]
        pick = most_interfered(interference(losses, params, grads, lr), self.replay_batch_size)
        return loss + F.cross_entropy(module(cx[pick], ct[pick]), cy[pick])

    def after_step(self, module, step) -> None:
        self.remember(step.x, step.y, step.t, rows=step.rows, task=step.task)
