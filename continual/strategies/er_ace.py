"""ER-ACE (Caccia et al. 2022): replay with an asymmetric cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from continual.strategies.rehearsal import Rehearsal


class ERACE(Rehearsal):
    """New samples compete only among the classes in their batch; replayed ones among all.

    Masking absent classes for the incoming data stops the new classes' gradients from pushing
    down the logits of old classes, the main source of class-incremental bias. Arguments as
    in :class:`~continual.strategies.rehearsal.Rehearsal`.
    """

    def loss(self, module, step, loss):
        logits, y = step.logits, step.y
        present = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
        present[y] = True
        new_loss = F.cross_entropy(logits.masked_fill(~present, torch.finfo(logits.dtype).min), y)
        if len(self.buffer):
            bx, by, bt = self.replay(self.replay_size(len(y)), step.x.device, module)[:3]
            new_loss = new_loss + F.cross_entropy(module(bx, bt), by)
        return new_loss

    def after_step(self, module, step) -> None:
        self.remember(step.x, step.y, step.t, rows=step.rows, task=step.task)
