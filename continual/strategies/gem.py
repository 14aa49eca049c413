"""Gradient Episodic Memory (Lopez-Paz & Ranzato 2017)."""

from __future__ import annotations

import numpy as np
import quadprog
import torch
import torch.nn.functional as F
from torch import Tensor

from continual.buffers import Storage, TaskBalanced
from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.strategies.rehearsal import Rehearsal


def gem_project(g: Tensor, past: Tensor, margin: float = 0.0, eps: float = 0.0) -> Tensor:
    """The gradient closest to ``g`` ``[P]`` that no past task's gradient ``past`` ``[K, P]``
    opposes: ``argmin ‖g̃ − g‖²`` subject to ``past · g̃ ≥ 0``; ``g`` itself when it satisfies
    every constraint.

    Solved in the dual, a K-variable QP (quadprog): ``min_v ½ vᵀ(GGᵀ + eps·I)v + (Gg)ᵀv``
    subject to ``v ≥ margin``, then ``g̃ = g + Gᵀv``. With ``margin = eps = 0`` this is the
    exact projection; GEM's ``margin`` > 0 pushes the step towards lowering past losses.
    """
    G = past.double().cpu().numpy()
    gd = g.double().cpu().numpy()
    if (G @ gd >= 0).all():
        return g
    P = G @ G.T
    P = 0.5 * (P + P.T) + max(eps, 1e-12) * np.eye(len(G))  # quadprog needs P positive definite
    v = quadprog.solve_qp(P, -(G @ gd), np.eye(len(G)), np.full(len(G), margin))[0]
    return torch.from_numpy(gd + G.T @ v).to(g.device, g.dtype)


class GEM(Rehearsal):
    """Steps that increase no past task's memory loss (to first order), as close as possible to
    the plain gradient: the QP of :func:`gem_project` on one gradient per past task.

    The memory holds an equal share of ``buffer_size`` per task, a uniform sample of each task
    filled at its end; every step computes each past task's gradient on all of that task's
    memory (one backward pass per past task). Defaults: ``margin=0.5`` and ``eps=1e-3``, the
    memory strength and the regulariser of the authors' code.

    Args:
        buffer_size: memory capacity, shared equally among past tasks.
        margin: the dual variables' lower bound γ (0: the exact projection).
        eps: added to the dual's diagonal for a stable solve.
        seed: seeds the memory.
        buffer_device, storage: as in :class:`~continual.strategies.rehearsal.Rehearsal`.
    """

    def __init__(self, buffer_size: int = 200, margin: float = 0.5, eps: float = 1e-3,
                 seed: int = 0, buffer_device: str | None = None,
                 storage: Storage = "auto") -> None:
        if margin < 0 or eps < 0:
            raise ConfigError(f"margin={margin}, eps={eps} are invalid; allowed: both >= 0")
        super().__init__(buffer_size, policy=TaskBalanced(), seed=seed,
                         buffer_device=buffer_device, storage=storage)
        self.margin, self.eps = margin, eps
        self._read: TensorData | None = None  # a memory of rows, read once a task

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        self.remember_task(stream, index)
        self._read = None

    def _memory(self) -> TensorData:
        """Every item of the memory, which each step's projection needs: gathered at each
        step from copies, read once a task from rows (the memory changes only at task ends)."""
        if not self.buffer.holds_rows:
            return self.buffer.data()
        if self._read is None:
            self._read = self.buffer.data()
        return self._read

    def on_before_optimizer_step(self, module) -> None:
        params = [p for p in module.net.parameters() if p.grad is not None]
        if not len(self.buffer) or not params:
            return
        memory = self._memory()
        past = []
        for task in torch.unique(memory.t):
            own = memory.t == task
            x, y, t = (v[own].to(module.device) for v in (memory.x, memory.y, memory.t))
            with torch.enable_grad(), torch.autocast(module.device.type, enabled=False):
                grads = torch.autograd.grad(F.cross_entropy(module(x, t).float(), y), params,
                                            allow_unused=True)
            past.append(torch.cat([(r if r is not None else torch.zeros_like(p)).flatten()
                                   for r, p in zip(grads, params)]).float())
        g = torch.cat([p.grad.flatten().float() for p in params])
        projected = gem_project(g, torch.stack(past), self.margin, self.eps)
        for p, new in zip(params, projected.split([p.numel() for p in params])):
            p.grad.copy_(new.view_as(p))
