"""A deployment folder: what ``continual retrain`` keeps between calls, written atomically.

Layout (everything tensors or plain JSON, loadable with ``weights_only=True``)::

    DEPLOY/state.json            the committed state: batches processed, rows, decisions, ...
    DEPLOY/journal.json          the step in progress: its batch and the last phase it finished
    DEPLOY/config.yaml           the resolved config of the first call (later calls must match)
    DEPLOY/history/NNNN.pt       each labelled batch after the quality gate: train / held-out
                                 parts and the serving model's errors on the kept samples
    DEPLOY/models/NNNN.pt        each trained model (weights, initial weights, strategy
                                 state, the monitor's reference inputs)
    DEPLOY/mlflow.db, artifacts/ the embedded MLflow registry (unless a tracking URI is given)

The state is committed once per step, after every registry write of the step: a step killed
at any point leaves the previous state, and the journal says which phases need not be redone.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.module import ContinualModule
from continual.result import atomic_write
from continual.retraining.batch_folders import folder_hash, read_folder
from continual.retraining.updates import StoredChunk

STATE, JOURNAL, CONFIG = "state.json", "journal.json", "config.yaml"


def batch_hash(path: Path) -> str:
    """A batch's identity: the SHA-256 of the file's bytes, or of a batch folder's files
    (renaming it changes nothing)."""
    if path.is_dir():
        return folder_hash(path)
    if not path.is_file():
        raise ConfigError(f"batch={str(path)!r} does not exist; allowed: an .npz or .pt file "
                          "(x and y for --batch, x for --inputs), an image folder or a "
                          "litdata folder")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_inputs(path: Path) -> torch.Tensor:
    """Unlabelled inputs ``x`` from an ``.npz`` or ``torch.save`` file, an image folder or a
    litdata folder (labels, if any, are ignored)."""
    if path.is_dir():
        return read_folder(path, labelled=False)[0]
    if not path.is_file():
        raise ConfigError(f"inputs={str(path)!r} does not exist; allowed: an .npz or .pt file "
                          "with an array x")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                x = torch.from_numpy(f["x"])
        else:
            x = torch.as_tensor(torch.load(path, weights_only=True)["x"])
    except (KeyError, ValueError, OSError, RuntimeError, TypeError) as e:
        raise ConfigError(f"inputs={str(path)!r} is unreadable ({type(e).__name__}); allowed: "
                          "an .npz or .pt file with an array x") from None
    if len(x) == 0:
        raise ConfigError(f"inputs={str(path)!r} holds no samples; allowed: at least one")
    return x.float()


def empty_state() -> dict[str, Any]:
    return {"format": 1, "steps": [], "since": 0, "tasks": [], "retrains": 0, "seconds": 0.0,
            "samples": 0, "events": [["reset", False, None]], "champion": None,
            "decisions": [], "quality": [], "monitor": [], "monitor_calls": [],
            "reference_version": None, "shadow": None}


class Deployment:
    """The files of one deployment folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # -- committed state and journal -------------------------------------------------------
    def load_state(self) -> dict[str, Any]:
        return _read_json(self.root / STATE) or empty_state()

    def commit(self, state: dict[str, Any]) -> None:
        """The step's one commit point; the journal is cleared after it."""
        atomic_write(self.root / STATE, json.dumps(state, indent=1) + "\n")
        (self.root / JOURNAL).unlink(missing_ok=True)

    def journal(self) -> dict[str, Any] | None:
        return _read_json(self.root / JOURNAL)

    def write_journal(self, entry: dict[str, Any]) -> None:
        atomic_write(self.root / JOURNAL, json.dumps(entry, indent=1) + "\n")

    def check_config(self, text: str) -> None:
        """The first call's config is the deployment's; a later call with another is refused."""
        path = self.root / CONFIG
        if not path.exists():
            atomic_write(path, text)
        elif path.read_text() != text:
            raise ConfigError(f"config differs from the one {self.root} was started with "
                              f"({path}); allowed: the same policy config for every call, or a "
                              "new deployment folder")

    # -- labelled history --------------------------------------------------------------------
    def save_chunk(self, chunk: StoredChunk, errors: torch.Tensor | None) -> None:
        state = {"step": chunk.step, "train": _data(chunk.train), "holdout": _data(chunk.holdout),
                 "errors": errors}
        _save(self.root / "history" / f"{chunk.step:06d}.pt", state)

    def load_history(self, n: int) -> tuple[list[StoredChunk], dict[int, torch.Tensor]]:
        """The first ``n`` stored chunks, and the serving model's errors on each scored one."""
        chunks, errors = [], {}
        for step in range(n):
            blob = _load(self.root / "history" / f"{step:06d}.pt")
            chunks.append(StoredChunk(step, TensorData(*blob["train"]),
                                      TensorData(*blob["holdout"])))
            if blob["errors"] is not None:
                errors[step] = blob["errors"]
        return chunks, errors

    # -- models ------------------------------------------------------------------------------
    def model_path(self, step: int) -> Path:
        return self.root / "models" / f"{step:06d}.pt"

    def save_model(self, module: ContinualModule, step: int,
                   reference: torch.Tensor | None = None) -> Path:
        """The model trained at ``step``, with the monitor's reference inputs for it."""
        path = self.model_path(step)
        _save(path, {"net": module.net.state_dict(), "initial_net": module.initial_state,
                     "strategy": module.strategy.state_dict(),
                     "samples_seen": module.samples_seen, "reference": reference})
        return path

    def load_model(self, module: ContinualModule, step: int) -> None:
        state = _load(self.model_path(step))
        module.net.load_state_dict(state["net"])
        module.initial_state = state["initial_net"]
        module.strategy.load_state_dict(state["strategy"])
        module.samples_seen = int(state["samples_seen"])

    def load_reference(self, step: int) -> torch.Tensor | None:
        """The monitor's reference inputs of the model trained at ``step``."""
        return _load(self.model_path(step)).get("reference")


def _data(d: TensorData) -> tuple[torch.Tensor, torch.Tensor]:
    return d.x, d.y


def _save(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


def _load(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile) as e:
        raise ConfigError(f"{path} is missing or unreadable ({type(e).__name__}); allowed: the "
                          "deployment folder as continual retrain left it") from None


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is unreadable ({e}); allowed: the file as continual retrain "
                          "wrote it") from None
