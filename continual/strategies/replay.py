"""Experience Replay (Chaudhry et al. 2019): train on the new batch plus a batch from memory."""

from __future__ import annotations

import torch.nn.functional as F

from continual.buffers import SelectionPolicy, Storage
from continual.errors import ConfigError
from continual.strategies.rehearsal import Rehearsal


class ExperienceReplay(Rehearsal):
    """Loss ``CE(new batch) + CE(replay batch)``; the memory is then offered the new batch.

    Arguments as in :class:`~continual.strategies.rehearsal.Rehearsal`, and:

    Args:
        replay_from_task: the first task (counted from 0) whose steps replay. 0: from the
            stream's start, as soon as the memory holds anything (reservoir ER as published:
            within a task the memory already holds some of its items). 1: from the second
            task, as Avalanche's ``Replay`` does (its memory is filled at each task's end),
            which spares the first task the replay's cost.
    """

    def __init__(self, buffer_size: int = 200, replay_batch_size: int | None = None,
                 replay_ratio: float = 1.0, policy: SelectionPolicy | None = None,
                 seed: int = 0, buffer_device: str | None = None,
                 augment_replay: bool = True, storage: Storage = "auto",
                 replay_from_task: int = 0) -> None:
        if replay_from_task < 0:
            raise ConfigError(f"replay_from_task={replay_from_task} is invalid; allowed: 0 "
                              "(from the stream's start) or a later task's index")
        super().__init__(buffer_size, replay_batch_size, replay_ratio, policy, seed,
                         buffer_device, augment_replay, storage)
        self.replay_from_task = replay_from_task

    def loss(self, module, step, loss):
        if len(self.buffer) and step.task >= self.replay_from_task:
            bx, by, bt = self.replay(self.replay_size(len(step.y)), step.x.device,
                                     module)[:3]
            loss = loss + F.cross_entropy(module(bx, bt), by)
        return loss

    def after_step(self, module, step) -> None:
        self.remember(step.x, step.y, step.t, rows=step.rows, task=step.task)

    def __repr__(self) -> str:
        text = super().__repr__()  # the default leaves a run's fingerprint as it was
        later = f", replay_from_task={self.replay_from_task}" if self.replay_from_task else ""
        return text[:-1] + later + ")"
