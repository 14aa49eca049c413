"""One task's ``Trainer``: the runner's defaults, a quiet fit, and Ctrl-C as an exception."""

from __future__ import annotations

import contextlib
import inspect
import logging
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader

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
