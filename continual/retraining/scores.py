"""The numbers that compare policies, as pure functions of a trajectory."""

from __future__ import annotations

import math

import numpy as np


def mean_accuracy(acc: np.ndarray) -> float:
    """Mean prequential accuracy over the scored steps (NaN steps are warm-up)."""
    scored = acc[~np.isnan(acc)]
    return float(scored.mean()) if len(scored) else float("nan")


def after_drift_accuracy(acc: np.ndarray, drift_points: list[int], after: int = 5) -> float:
    """Mean accuracy over the ``after`` steps starting at each drift point."""
    spans = [acc[d:d + after] for d in drift_points]
    values = np.concatenate(spans) if spans else np.zeros(0)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def chunks_to_recover(acc: np.ndarray, drift: int, window: int = 5, tolerance: float = 0.05
                      ) -> int | None:
    """Steps from ``drift`` until accuracy is back within ``tolerance`` of its pre-drift level.

    The pre-drift level is the mean over the ``window`` scored steps before ``drift``; 0 means
    the drift cost nothing, ``None`` that accuracy never came back (or no pre-drift level).
    """
    before = acc[max(0, drift - window):drift]
    before = before[~np.isnan(before)]
    if len(before) == 0:
        return None
    level = before.mean() - tolerance
    for t in range(drift, len(acc)):
        if not np.isnan(acc[t]) and acc[t] >= level:
            return t - drift
    return None


def total_cost(acc: np.ndarray, retrains: int, alpha: float) -> float:
    """Staleness (``Σ (1 − accuracy)`` over scored steps, in chunks of errors) + α × retrains."""
    scored = acc[~np.isnan(acc)]
    return float(np.sum(1.0 - scored)) + alpha * retrains


def mean_recovery(acc: np.ndarray, drift_points: list[int], window: int = 5,
                  tolerance: float = 0.05) -> float:
    """Mean :func:`chunks_to_recover` over the drifts; ``inf`` if any never recovered."""
    values = [chunks_to_recover(acc, d, window, tolerance) for d in drift_points]
    if not values:
        return float("nan")
    return math.inf if any(v is None for v in values) else float(np.mean(values))
