"""The run state after each task: enough to continue the stream exactly where it stopped.

Saved with ``torch.save`` atomically and loaded with ``weights_only=True``: a checkpoint holds
tensors and plain data only, so loading one never executes code.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from continual.errors import ConfigError
from continual.module import ContinualModule
from continual.result import Result, TaskCost, atomic_write

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(run_dir: Path, module: ContinualModule, result: Result) -> Path:
    """Write ``run_dir/checkpoint.pt``: weights, strategy state, matrix so far, cost."""
    state = {
        "format": 1,
        "net": module.net.state_dict(),
        "initial_net": module._initial_state,
        "strategy": module.strategy.state_dict(),
        "samples_seen": module.samples_seen,
        "matrix": torch.as_tensor(result.matrix),
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
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"checkpoint {path} is unreadable ({first}); allowed: a complete "
                          "checkpoint.pt, or delete it to start over") from None
    if state.get("fingerprint") != fingerprint(result):
        raise ConfigError(f"checkpoint {path} was written by another configuration (stream or "
                          "strategy differ); allowed: resume with the run's own config.yaml")
    module.net.load_state_dict(state["net"])
    module._initial_state = state["initial_net"]
    module.strategy.load_state_dict(state["strategy"])
    module.samples_seen = int(state["samples_seen"])
    result.matrix = state["matrix"].numpy().astype(np.float64)
    result.baseline = state["baseline"].numpy().astype(np.float64)
    result.cost = [TaskCost(**c) for c in state["cost"]]
    return True


def fingerprint(result: Result) -> str:
    """What must match for a checkpoint to belong to this run: stream and strategy."""
    return repr((result.stream, result.strategy))
