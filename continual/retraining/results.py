"""One table over policies run on the same stream, and the files it is saved to."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from continual.result import atomic_write
from continual.retraining.scores import (
    after_drift_accuracy,
    mean_accuracy,
    mean_recovery,
    total_cost,
)
from continual.retraining.simulate import PolicyRun

COLUMNS = [("mean_accuracy", "mean acc %"), ("after_drift_accuracy", "after drift %"),
           ("chunks_to_recover", "recover"), ("retrains", "retrains"),
           ("deployments", "deploys"), ("train_seconds", "train s"),
           ("train_samples", "train samples"), ("total_cost", "total cost")]


def summarize(run: PolicyRun, alpha: float, after: int = 5) -> dict[str, float]:
    """The table's row for one policy (first model's training excluded from the counts)."""
    acc = np.array([s.accuracy for s in run.steps], dtype=float)
    scored = [s for s in run.steps if not math.isnan(s.accuracy)]
    retrains = sum(s.retrained for s in scored)
    return {
        "mean_accuracy": mean_accuracy(acc),
        "after_drift_accuracy": after_drift_accuracy(acc, run.drift_points, after),
        "chunks_to_recover": mean_recovery(acc, run.drift_points),
        "retrains": retrains,
        "deployments": sum(s.deployed for s in scored),
        "train_seconds": sum(s.train_seconds for s in run.steps),
        "train_samples": sum(s.train_samples for s in run.steps),
        "total_cost": total_cost(acc, retrains, alpha),
        "dropped_samples": sum(q.dropped for q in run.quality),
    }


def policy_table(summaries: dict[str, dict[str, float]]) -> str:
    """Fixed-width text table, one row per policy."""
    width = max([6, *map(len, summaries)])
    head = f"{'policy':<{width}}  " + "  ".join(f"{title:>13}" for _, title in COLUMNS)
    rows = [head]
    for name, s in summaries.items():
        cells = [_cell(key, s[key]) for key, _ in COLUMNS]
        rows.append(f"{name:<{width}}  " + "  ".join(f"{c:>13}" for c in cells))
    return "\n".join(rows)


def _cell(key: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if key.endswith("accuracy"):
        return f"{100 * value:.1f}"
    if key == "chunks_to_recover":
        # a mean over drift points: whole chunks print as integers
        return "never" if math.isinf(value) else f"{int(value):,}" if float(value).is_integer() \
            else f"{value:.1f}"
    if key in ("train_seconds", "total_cost"):
        return f"{value:.2f}"
    return f"{int(value):,}"


def save_simulation(root: Path, runs: dict[str, PolicyRun], summaries: dict[str, dict],
                    meta: dict) -> None:
    """``simulation.json`` (every step, decision and drop) and ``policies.txt`` (the table)."""
    payload = {**meta, "summary": summaries,
               "runs": {name: run.as_dict() for name, run in runs.items()}}
    text = json.dumps(_plain(payload), indent=2, allow_nan=False)
    atomic_write(root / "simulation.json", text + "\n")
    atomic_write(root / "policies.txt", policy_table(summaries) + "\n")


def _plain(value):
    """``value`` with NaN and infinities as ``null``: strict JSON that any reader accepts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
