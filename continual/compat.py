"""Every use of another library's private names, in one place.

The package reaches past public APIs only here, and each name below has a test
(``tests/test_compat.py``) that fails loudly when an upstream release moves it, so an upgrade
breaks one test, not ``import continual``. Imports are lazy: a moved name fails where it is
used, never at import time.

- ``torch._foreach_*``: fused element-wise ops over lists of tensors (one kernel launch for all
  of a model's parameters instead of one per tensor). Stable in use since torch 1.8 and called
  by torch's own optimizers, but underscored; a per-tensor loop stands in when they are gone.
- ``_SubprocessScriptLauncher``: Lightning's launcher for ``strategy="ddp"``, the only launcher
  that keeps the ranks alive across the fits of a stream (see :mod:`continual.distributed`).
- ``Trainer.fit_loop``'s budget (``max_epochs``, ``min_epochs``, and its ``epoch_loop``'s
  ``max_steps``, ``min_steps``): public attributes of loop classes Lightning keeps private. A
  run fits every task with one Trainer; Lightning counts epochs and steps over all its fits,
  so each fit's limits are moved to where that fit starts (:func:`set_fit_budget`). Lightning
  has no public setter: ``Trainer(max_epochs=...)`` is read once, at construction.
- The fit loops' progress counters (``epoch_progress``, ``batch_progress``,
  ``scheduler_progress``, the optimisation loops' ``optim_progress`` / ``optim_step_progress``),
  ``Timer``'s clock (``_start_time``, ``_end_time``, ``_offset``) and ``ModelCheckpoint``'s
  record of its last save (``_last_global_step_saved``, ``_last_checkpoint_saved``): each
  task's fit restarts them (:func:`restart_counts`, :func:`restart_timer`,
  :func:`restart_checkpoint`), so what Lightning schedules by epoch,
  batch or step (validation every n epochs, scheduler frequencies, checkpoints every n epochs
  or steps, gradient-accumulation schedules, ``max_time``) runs the same in every task, as it
  would with a fresh Trainer a task; the loggers' step (``_batches_that_stepped``) goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


def foreach_sub(a: Sequence[Tensor], b: Sequence[Tensor]) -> list[Tensor]:
    """``[a_i − b_i]``, new tensors."""
    fused = getattr(torch, "_foreach_sub", None)
    return list(fused(a, b)) if fused else [x - y for x, y in zip(a, b)]


def foreach_copy(a: Sequence[Tensor]) -> list[Tensor]:
    """Copies of ``a``'s tensors (detached from any graph by the caller)."""
    fused = getattr(torch, "_foreach_mul", None)
    return list(fused(a, 1.0)) if fused else [x.clone() for x in a]


def foreach_addcmul_(out: Sequence[Tensor], a: Sequence[Tensor], b: Sequence[Tensor],
                     value: float) -> None:
    """``out_i += value · a_i · b_i`` in place."""
    fused = getattr(torch, "_foreach_addcmul_", None)
    if fused:
        fused(list(out), list(a), list(b), value=value)
        return
    for o, x, y in zip(out, a, b):
        o.addcmul_(x, y, value=value)


def ddp_script_launcher() -> type:
    """Lightning's launcher class for ``strategy="ddp"`` (re-runs the script per local rank)."""
    from lightning.pytorch.strategies.launchers.subprocess_script import (
        _SubprocessScriptLauncher,
    )

    return _SubprocessScriptLauncher


@dataclass(frozen=True)
class FitBudget:
    """One fit's limits as Lightning resolved them from the Trainer's arguments (``-1`` or
    ``None``: no limit), counted from the fit's start."""

    max_epochs: int | None
    min_epochs: int | None
    max_steps: int
    min_steps: int | None


def fit_budget(trainer: Any) -> FitBudget:
    """The per-fit limits a fresh ``trainer`` was constructed with."""
    loop = trainer.fit_loop
    return FitBudget(loop.max_epochs, loop.min_epochs, loop.epoch_loop.max_steps,
                     loop.epoch_loop.min_steps)


def set_fit_budget(trainer: Any, budget: FitBudget, epoch: int, step: int) -> None:
    """Let ``trainer``'s next fit run ``budget`` from epoch ``epoch`` and optimizer step ``step``
    (Lightning's counters where that fit's task starts)."""
    def after(start: int, limit: int | None) -> int | None:
        return limit if limit is None or limit < 0 else start + limit

    loop = trainer.fit_loop
    loop.max_epochs = after(epoch, budget.max_epochs)
    loop.min_epochs = after(epoch, budget.min_epochs)
    loop.epoch_loop.max_steps = after(step, budget.max_steps)
    loop.epoch_loop.min_steps = after(step, budget.min_steps)


def restart_counts(trainer: Any) -> None:
    """Lightning's epoch, batch, scheduler and optimizer-step counts back to 0 before a task's
    fit (``current_epoch``, ``global_step``); the step its loggers log at keeps counting."""
    loop = trainer.fit_loop.epoch_loop
    for progress in (trainer.fit_loop.epoch_progress, loop.batch_progress,
                     loop.scheduler_progress, loop.automatic_optimization.optim_progress,
                     loop.manual_optimization.optim_step_progress):
        progress.reset()


def restart_timer(timer: Any) -> None:
    """A ``Timer`` callback's clock back to its start: ``max_time`` bounds each task's fit."""
    timer._start_time = dict.fromkeys(timer._start_time)
    timer._end_time = dict.fromkeys(timer._end_time)
    timer._offset = 0


def restart_checkpoint(checkpoint: Any) -> None:
    """A ``ModelCheckpoint``'s record of its last save back to none: a task whose save point
    falls on the step where the task before saved is saved too (as by a fresh callback)."""
    checkpoint._last_global_step_saved = 0
    checkpoint._last_checkpoint_saved = ""
