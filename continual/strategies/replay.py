"""Experience Replay (Chaudhry et al. 2019): train on the new batch plus a batch from memory."""

from __future__ import annotations

import torch.nn.functional as F

from continual.strategies.rehearsal import Rehearsal


class ExperienceReplay(Rehearsal):
    """Loss ``CE(new batch) + CE(replay batch)``; the memory is then offered the new batch.

    Arguments as in :class:`~continual.strategies.rehearsal.Rehearsal`.
    """

    def loss(self, module, step, loss):
        if len(self.buffer):
            bx, by, bt = self.replay(self.replay_size(len(step.y)), step.x.device,
                                     module)[:3]
            loss = loss + F.cross_entropy(module(bx, bt), by)
        return loss

    def after_step(self, module, step) -> None:
        self.remember(step.x, step.y, step.t, rows=step.rows, task=step.task)
