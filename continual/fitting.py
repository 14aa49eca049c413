"""The run's ``Trainer``: the runner's defaults, one fit per task, quiet, Ctrl-C an exception."""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer
from torch.utils.data import DataLoader

from continual.compat import (
    fit_budget,
    restart_checkpoint,
    restart_counts,
    restart_timer,
    set_fit_budget,
)
from continual.profiler import NullProfiler

# Lightning's defaults are tuned for one long fit; a stream runs many short ones, quietly.
TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 10,
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}


_FIT_TAKES_WEIGHTS_ONLY = "weights_only" in inspect.signature(Trainer.fit).parameters


def trainer_arguments(trainer: dict[str, Any] | None, *extra: Callback) -> dict[str, Any]:
    """Keyword arguments for one ``Trainer``: the runner's defaults, then ``trainer``'s.

    The callbacks (``trainer``'s, then ``extra``) come in a list of this Trainer's own:
    Lightning appends to the list it is given (plugins' callbacks, a checkpoint, a timer), and
    one list shared by every task's Trainer would collect another copy each task. Without a
    configured profiler, Lightning's do-nothing one is swapped for one that costs nothing per
    hook call (:class:`NullProfiler`); ``barebones`` mode refuses any profiler.
    """
    kwargs = {**TRAINER_DEFAULTS, **(trainer or {})}
    callbacks = kwargs.get("callbacks") or []
    callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
    if callbacks or extra:
        kwargs["callbacks"] = [*callbacks, *extra]
    if kwargs.get("profiler") is None and not kwargs.get("barebones"):
        kwargs["profiler"] = NullProfiler()
    return kwargs


class RunTrainer:
    """One ``Trainer`` that fits every task of a run, each fit as a fresh Trainer's would run.

    A Trainer's start-up costs more than a short task's fit (here ~7 ms, most of it Lightning's
    scan of every installed package for callback plugins; more where more is installed), so
    it happens once a run. Each task's fit then starts where a new Trainer's would: Lightning's
    epoch, batch and step counts at 0 (validation every n epochs, scheduler frequencies,
    checkpoints every n epochs or steps and accumulation schedules run alike in every task),
    the constructed ``accumulate_grad_batches``, ``EarlyStopping`` and ``Timer`` callbacks as
    constructed (a best score carried over from the task before would stop the next one before
    it has learnt anything), ``ModelCheckpoint``'s last save forgotten (a task's save point on
    the step of the task before's would be skipped), and no stop pending. The loggers' step
    keeps counting over the run. A task resumed from a mid-task checkpoint gets its counts and
    callbacks' state from the file.
    """

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.trainer = Trainer(**kwargs)
        self.budget = fit_budget(self.trainer)  # per fit, as Lightning resolved the arguments
        self.accumulate = self.trainer.accumulate_grad_batches  # a schedule callback moves it
        self.fresh = [(c, copy.deepcopy(c.state_dict())) for c in self.trainer.callbacks
                      if isinstance(c, EarlyStopping)]

    def position(self) -> tuple[int, int]:
        """Lightning's (epoch, optimizer step) in the current task's fit."""
        return self.trainer.current_epoch, self.trainer.global_step

    def start_task(self) -> tuple[int, int]:
        """Counts back to 0 for a new task's fit; returns where it starts, ``(0, 0)``."""
        restart_counts(self.trainer)
        return self.position()

    def fit(self, module: LightningModule, train: DataLoader | Any, val: Any = None,
            ckpt_path: Path | None = None, task: int = 0,
            start: tuple[int, int] | None = None) -> None:
        """Fit ``module`` for one task from ``start`` (:meth:`start_task`'s, or what the
        mid-task checkpoint ``ckpt_path`` says; written before counts restarted each task, it
        may say Lightning's counts over the run); by default, where this Trainer stands."""
        trainer = self.trainer
        epoch, step = start if start is not None else self.position()
        module.task_start = (epoch, step)
        set_fit_budget(trainer, self.budget, epoch, step)
        trainer.should_stop = False  # an early stop of the task before is not this one's
        trainer.accumulate_grad_batches = self.accumulate
        for callback, state in self.fresh:  # a resumed task's own state comes with its file
            callback.load_state_dict(copy.deepcopy(state))
        for callback in trainer.callbacks:
            if isinstance(callback, Timer):
                restart_timer(callback)
            elif isinstance(callback, ModelCheckpoint):
                restart_checkpoint(callback)
        fit_task(trainer, module, train, val, ckpt_path, task)


def fit_task(fit: Trainer, module: LightningModule, train: DataLoader | Any, val: Any = None,
             ckpt_path: Path | None = None, task: int = 0) -> None:
    """``Trainer.fit``, with Ctrl-C surfacing as KeyboardInterrupt instead of Lightning's exit.

    With ``ckpt_path`` (a mid-task checkpoint) Lightning restores weights, optimizer and loops
    and continues at the next epoch; the file holds tensors and plain data only.
    """
    # Lightning 2.6 loads checkpoints with pickle unless told; 2.5 leaves it to torch.load,
    # whose default is tensors and plain data only.
    safe = {"weights_only": True} if ckpt_path is not None and _FIT_TAKES_WEIGHTS_ONLY else {}
    try:
        fit.fit(module, train, val, ckpt_path=ckpt_path, **safe)
    except SystemExit:
        if not fit.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning left it ignored
        raise KeyboardInterrupt(f"interrupted during task {task + 1}") from None


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Hide Lightning's per-fit banners ("GPU available…") and data-loader worker hints.

    A stream calls ``fit`` once per task; the same banner five times buries the results.
    Warnings and errors still show.
    """
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*number of training batches.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
