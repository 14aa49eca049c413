"""The run state after each task: enough to continue the stream exactly where it stopped.

Saved with ``torch.save`` atomically and loaded with ``weights_only=True``: a checkpoint holds
tensors and plain data only, so loading one never executes code.

Within a task, Lightning's own checkpoint (weights, optimizer, loops) plus the module's
continual state is kept in ``mid_task.ckpt`` every few epochs, so a long task killed midway
resumes at its last saved epoch; the task's checkpoint supersedes it when the task ends.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from continual.distributed import is_rank_zero
from continual.errors import ConfigError
from continual.module import ContinualModule
from continual.result import Result, TaskCost, atomic_write

CHECKPOINT = "checkpoint.pt"
MID_TASK = "mid_task.ckpt"

log = logging.getLogger(__name__)


def save_checkpoint(run_dir: Path, module: ContinualModule, result: Result) -> Path:
    """Write ``run_dir/checkpoint.pt``: weights, strategy state, matrix so far, cost."""
    state = {
        "format": 1,
        "net": module.net.state_dict(),
        "initial_net": module.initial_state,
        "strategy": module.strategy.state_dict(),
        "samples_seen": module.samples_seen,
        "matrix": torch.as_tensor(result.matrix),
        "task_il_matrix": None if result.task_il_matrix is None else
        torch.as_tensor(result.task_il_matrix),
        "baseline": torch.as_tensor(result.baseline),
        "cost": [asdict(c) for c in result.cost],
        "fingerprint": fingerprint(result),
    }
    path = Path(run_dir) / CHECKPOINT
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())
    return path


def load_checkpoint(run_dir: Path, module: ContinualModule, result: Result) -> bool:
    """Restore ``module`` and ``result`` from ``run_dir``; False when there is no checkpoint.

    Raises:
        ConfigError: the file is truncated or corrupt, or was written by another
            configuration (different stream or strategy).
    """
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return False
    try:
        _check_crcs(path)
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError,
            zipfile.BadZipFile) as e:  # OSError: a folder, or no permission to read
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"checkpoint {path} is unreadable ({first}); allowed: a complete "
                          "checkpoint.pt, or delete it to start over") from None
    changed = differences(state.get("fingerprint"), result)
    if changed:
        raise ConfigError(f"checkpoint {path} was written by another configuration "
                          f"({', '.join(changed)} differ); allowed: resume with the run's own "
                          "settings (its config.yaml)")
    module.net.load_state_dict(state["net"])
    module.initial_state = state["initial_net"]
    module.strategy.load_state_dict(state["strategy"])
    module.samples_seen = int(state["samples_seen"])
    result.matrix = state["matrix"].numpy().astype(np.float64)
    if result.task_il_matrix is not None:  # a class-incremental stream records it
        task_il = state.get("task_il_matrix")  # absent from checkpoints written before it
        result.task_il_matrix = np.full_like(result.matrix, np.nan) if task_il is None else \
            task_il.numpy().astype(np.float64)
    result.baseline = state["baseline"].numpy().astype(np.float64)
    result.cost = [TaskCost(**c) for c in state["cost"]]
    return True


# Trainer settings that change what a task computes (devices do not: a run resumes on any).
DECIDING_TRAINER_SETTINGS = ("max_epochs", "max_steps", "precision", "gradient_clip_val",
                             "gradient_clip_algorithm", "accumulate_grad_batches")


def describe_setup(module: ContinualModule, trainer: dict[str, Any], batch_size: int
                   ) -> dict[str, Any]:
    """Plain-data description of what, beside stream and strategy, decides a run's numbers:
    the network's architecture, the optimizer and its settings, the deciding trainer settings
    and the batch size (stored in ``results.json`` as ``setup``)."""
    shapes = [(n, list(t.shape)) for n, t in module.net.state_dict().items()]
    probe = module.optimizer_factory([torch.zeros(1, requires_grad=True)])
    settings = {k: v for k, v in probe.defaults.items()
                if isinstance(v, (bool, int, float, str, type(None), tuple, list))}
    return {
        "net": type(module.net).__qualname__,
        "net_parameters": sum(t.numel() for t in module.net.parameters()),
        "net_architecture": hashlib.sha256(repr(shapes).encode()).hexdigest()[:16],
        "optimizer": f"{type(probe).__name__}"
                     f"({', '.join(f'{k}={v!r}' for k, v in settings.items())})",
        "trainer": {k: trainer[k] for k in DECIDING_TRAINER_SETTINGS
                    if trainer.get(k) is not None},
        "batch_size": batch_size,
    }


def fingerprint(result: Result) -> dict[str, str]:
    """What must match for a checkpoint to belong to this run: stream, strategy, seed and the
    :func:`describe_setup` parts, each by its ``repr``."""
    return {"stream": repr(result.stream), "strategy": result.strategy, "seed": repr(result.seed),
            **{k: repr(v) for k, v in result.setup.items()}}


def differences(saved: Any, result: Result) -> list[str]:
    """The names of the parts of ``saved`` (a checkpoint's fingerprint) this run differs in."""
    now = fingerprint(result)
    if not isinstance(saved, dict):  # written before the fingerprint covered the setup
        return [] if saved == repr((result.stream, result.strategy)) else ["stream or strategy"]
    return [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]


class MidTaskCheckpoint(Callback):
    """Every ``every`` epochs, Lightning's checkpoint of the task so far in ``run_dir``.

    Written by :meth:`Trainer.save_checkpoint` (so any Lightning strategy saves its own way) to
    a temporary name, flushed to disk and renamed: a kill leaves the previous checkpoint or
    the new one, never half of one. The module adds its continual state
    (:meth:`ContinualModule.on_save_checkpoint`); this adds the run's fingerprint.
    """

    def __init__(self, run_dir: Path, every: int, fingerprint: dict[str, str] | None = None
                 ) -> None:
        # fingerprint: the run's (set once the run's description is known, before training)
        self.path, self.every, self.fingerprint = Path(run_dir) / MID_TASK, every, fingerprint

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if (pl_module.task_epoch + 1) % self.every:
            return
        part = self.path.with_name(f".{MID_TASK}.part")
        trainer.save_checkpoint(part)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            with open(part, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(part, self.path)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint.setdefault("continual", {})["fingerprint"] = self.fingerprint


@dataclass(frozen=True)
class MidTask:
    """What a usable mid-task checkpoint holds of its task, read from it once."""

    path: Path
    epochs: int  # of its task, done
    steps: int  # optimizer steps of its task, done
    # Lightning's (epoch, optimizer step) where its task started: the Trainer that wrote it
    # counted over all its fits, and the resumed fit continues that count.
    start: tuple[int, int]


def mid_task(run_dir: Path, index: int, result: Result,
             module: ContinualModule | None = None) -> MidTask | None:
    """What ``run_dir/mid_task.ckpt`` holds of task ``index``; None when it cannot be used.

    One left for another task (a kill between a task's checkpoint and this one's removal) is
    superseded: ignored. An unreadable one (truncated, corrupt: its CRCs are checked) or one
    from another configuration is ignored with a one-line warning rather than refused: the
    finished tasks are intact, so restarting this task costs only its own epochs, and an
    automatic requeue (SLURM) is not stopped by a file the run will overwrite anyway.
    """
    path = Path(run_dir) / MID_TASK
    if not path.exists():
        return None
    try:
        _check_crcs(path)
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        saved = state["continual"]
        epoch, step = (int(v) for v in saved.get("task_start", (0, 0)))
        found = MidTask(path, int(state["epoch"]) + 1 - epoch,
                        int(state.get("global_step", 0)) - step, (epoch, step))
    except Exception as e:  # whatever a damaged file raises, it is not used
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return _ignored(f"mid-task checkpoint {path} is unreadable ({first})", index)
    if differences(saved.get("fingerprint"), result):
        return _ignored(f"mid-task checkpoint {path} was written by another configuration",
                        index)
    mismatch = module is not None and _shape_mismatch(state.get("state_dict", {}), module)
    if mismatch:
        return _ignored(f"mid-task checkpoint {path} holds {mismatch}", index)
    return found if saved.get("task") == index and found.epochs else None


def _shape_mismatch(saved: dict[str, Any], module: ContinualModule) -> str:
    """What of ``saved`` (a module state) cannot load into ``module``; empty when all can."""
    own = module.state_dict()
    for name, tensor in own.items():
        if name not in saved:
            return f"no {name}"
        if not isinstance(saved[name], torch.Tensor) or saved[name].shape != tensor.shape:
            got = tuple(getattr(saved[name], "shape", ()))
            return f"{name} of shape {got}, not {tuple(tensor.shape)}"
    return ""


def _check_crcs(path: Path) -> None:
    """Raise ValueError when a member of the zip archive fails its CRC.

    ``torch.load`` does not check them: a checkpoint with one flipped byte in a tensor loads
    silently, with that tensor wrong.
    """
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
    if bad is not None:
        raise ValueError(f"{bad} fails its CRC check")


def _ignored(problem: str, index: int) -> None:
    if is_rank_zero():
        log.warning(f"{problem}; ignored: task {index + 1} restarts from its beginning")


def remove_mid_task(run_dir: Path) -> None:
    """Drop the mid-task checkpoint once the task's own checkpoint supersedes it (and any
    half-written one a kill left behind)."""
    for name in (MID_TASK, f".{MID_TASK}.part"):
        (Path(run_dir) / name).unlink(missing_ok=True)
