"""Training curves while a task trains: loss, learning rate and throughput every few steps.

The run's loggers want one step axis over the whole stream. :class:`StepLogger`, a callback of
the run's Trainer, keeps the steps of the tasks already trained (also those of a run resumed
in another process) and logs each point at the run's global step, straight to the run's
loggers: the Trainer keeps ``logger=False``, so Lightning neither finalizes the loggers after
each fit nor makes the module ``self.log`` every step (which costs more than a small model's
step, see ``ContinualModule.on_train_start``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from torch import Tensor


class StepLogger(Callback):
    """Every ``Trainer(log_every_n_steps=...)`` global steps (Lightning's default: 50; ``0``:
    never), ``train/loss`` (that step's), ``train/lr`` (the first parameter group's) and
    ``train/samples_per_second`` (since the previous point or the epoch's start, all ranks
    together) to every logger; also each task's last step, every validation's ``val/*`` metrics,
    and a ``save()`` of every logger at each epoch's end (the CSV logger writes its rows then).

    A step is an optimizer step. Task ``i``'s steps are numbered from where task ``i - 1``'s
    ended: :attr:`global_step` (the steps already trained; a resumed run sets it from the
    finished tasks' ``TaskCost.train_steps``) advances at each fit's end by the task's own
    steps (``ContinualModule.task_step``, which a mid-task checkpoint restores).
    """

    def __init__(self, loggers: Sequence[Logger], global_step: int = 0) -> None:
        self.loggers, self.global_step = list(loggers), global_step
        self._loss: Tensor | None = None  # the last step's, on its device: read when logged
        self._logged = -1  # the fit's step last logged
        self._mark = (0.0, 0)  # (time, samples seen) where throughput is counted from

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._loss, self._logged = None, -1

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._mark = (time.perf_counter(), _samples(pl_module))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self._loss = loss if isinstance(loss, Tensor) else None
        every, step = trainer.log_every_n_steps, pl_module.task_step
        if every and step != self._logged and (self.global_step + step) % every == 0:
            self._log_step(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for logger in self.loggers:
            logger.save()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith("val/")}
        if metrics:
            self._send(metrics, self.global_step + pl_module.task_step)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.log_every_n_steps and pl_module.task_step not in (0, self._logged):
            self._log_step(trainer, pl_module)  # where the task's curve ends
        self.global_step += pl_module.task_step
        self._loss = None

    def _log_step(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._logged = pl_module.task_step
        metrics = {}
        if self._loss is not None:
            metrics["train/loss"] = self._loss.item()  # one read per point, not per step
        if trainer.optimizers:
            metrics["train/lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        now, seen = time.perf_counter(), _samples(pl_module)
        (then, before), self._mark = self._mark, (now, seen)
        if seen > before and now > then:
            metrics["train/samples_per_second"] = (seen - before) * trainer.world_size / (
                now - then)
        self._send(metrics, self.global_step + pl_module.task_step)

    def _send(self, metrics: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step=step)


def _samples(module: LightningModule) -> int:
    return int(getattr(module, "samples_seen", 0))
