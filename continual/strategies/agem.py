"""Averaged Gradient Episodic Memory (Chaudhry et al. 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from continual.buffers import Storage, TaskBalanced
from continual.data.stream import Stream
from continual.strategies.rehearsal import Rehearsal


def agem_project(g: Tensor, g_ref: Tensor) -> Tensor:
    """Project ``g`` so it no longer increases the memory loss.

    ``g' = g − (g·g_ref / g_ref·g_ref) g_ref`` when ``g·g_ref < 0``, else ``g`` unchanged; then
    ``g'·g_ref = 0 ≥ 0``.
    """
    dot = torch.dot(g, g_ref)
    if dot >= 0:
        return g
    return g - (dot / torch.dot(g_ref, g_ref).clamp_min(1e-12)) * g_ref


class AGEM(Rehearsal):
    """Gradient steps constrained not to increase the loss on a memory of past tasks.

    The memory is filled at the end of each task with an equal share per task, so the
    reference gradient comes from earlier tasks only. The reference loss is computed in full
    precision after Lightning has unscaled the gradients, so the projection is correct
    under mixed precision.

    The reference batch is augmented as new samples are (``augment_replay``), with draws
    seeded by the step: under DDP every rank must project onto the same reference gradient,
    and the global random stream (which checkpoints save) is left untouched.

    Args:
        buffer_size: memory capacity, shared equally among past tasks.
        replay_batch_size: samples in each reference gradient.
        seed: seeds the memory and the reference batch's augmentation.
        buffer_device, storage: as in :class:`~continual.strategies.rehearsal.Rehearsal`.
        augment_replay: augment the reference batch like new samples (``False``: as stored).
    """

    def __init__(self, buffer_size: int = 200, replay_batch_size: int = 64, seed: int = 0,
                 buffer_device: str | None = None, augment_replay: bool = True,
                 storage: Storage = "auto") -> None:
        super().__init__(buffer_size, replay_batch_size, policy=TaskBalanced(), seed=seed,
                         buffer_device=buffer_device, augment_replay=augment_replay,
                         storage=storage)
        self.seed = seed

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        self.remember_task(stream, index)

    def on_before_optimizer_step(self, module) -> None:
        params = [p for p in module.net.parameters() if p.grad is not None]
        if not len(self.buffer) or not params:
            return
        x, y, t = self.reference_batch(module)
        with torch.enable_grad(), torch.autocast(module.device.type, enabled=False):
            ref_loss = F.cross_entropy(module(x, t).float(), y)
            ref = torch.autograd.grad(ref_loss, params, allow_unused=True)
        g = torch.cat([p.grad.flatten().float() for p in params])
        g_ref = torch.cat([(r if r is not None else torch.zeros_like(p)).flatten().float()
                           for r, p in zip(ref, params)])
        projected = agem_project(g, g_ref)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(projected[offset:offset + n].view_as(p).to(p.grad.dtype))
            offset += n

    def reference_batch(self, module) -> tuple[Tensor, Tensor, Tensor]:
        """The memory batch of this step's reference gradient, as the network takes it: the
        same draw, and the same augmentation, on every rank."""
        x, y, t = self.buffer.sample(self.replay_batch_size, module.device)[:3]
        if not self.augment_replay or module.augmentation is None:
            return module.training_inputs(x, augment=False), y, t
        devices = [module.device] if module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed * 1_000_003 + module.task_step)
            return module.training_inputs(x), y, t
