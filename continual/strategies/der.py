"""Dark Experience Replay (Buzzega et al. 2020): replay the logits, not only the labels."""

from __future__ import annotations

import torch.nn.functional as F

from continual.buffers import SelectionPolicy, Storage
from continual.strategies.rehearsal import Rehearsal


class DER(Rehearsal):
    """Loss ``CE(new) + α MSE(f(x_m), z_m)``: match the logits ``z_m`` stored with memory items.

    Args:
        alpha: weight α of the logit-matching term.
        buffer_size, replay_batch_size, replay_ratio, seed, buffer_device, policy, storage: as in
            :class:`~continual.strategies.rehearsal.Rehearsal` (default: a reservoir memory;
            with :class:`~continual.buffers.Herding`, each task's items are re-chosen at its
            end with the network's logits then).
    """

    def __init__(self, alpha: float = 0.3, buffer_size: int = 200,
                 replay_batch_size: int | None = None, replay_ratio: float = 1.0, seed: int = 0,
                 buffer_device: str | None = None, policy: SelectionPolicy | None = None,
                 storage: Storage = "auto") -> None:
        super().__init__(buffer_size, replay_batch_size, replay_ratio, policy, seed=seed,
                         buffer_device=buffer_device, storage=storage)
        self.alpha = alpha

    def replay_terms(self, module, n: int, device):
        """``α MSE`` on one memory batch (subclasses add to it)."""
        bx, _, _, bz = self.replay(n, device, module)
        return self.alpha * F.mse_loss(module.net(bx), bz)

    def loss(self, module, step, loss):
        if len(self.buffer):
            loss = loss + self.replay_terms(module, self.replay_size(len(step.y)), step.x.device)
        return loss

    def after_step(self, module, step) -> None:
        self.remember(step.x, step.y, step.t, step.raw_logits.detach(), step.rows, step.task)
