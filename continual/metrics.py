"""Scores computed from the accuracy matrix, as pure functions.

Notation: ``R[i, j]`` is the accuracy on task ``j``'s test set after training on tasks
``0..i``; a run that stopped early has fewer rows than columns. ``k`` below is the index of
the last trained task (``R.shape[0] - 1`` unless ``after`` says otherwise). A score that is
not defined yet (backward transfer after one task) is ``nan``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from continual.errors import ConfigError


def _rows(matrix: ArrayLike, after: int | None) -> tuple[np.ndarray, int]:
    R = np.asarray(matrix, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] == 0 or R.shape[0] > R.shape[1]:
        raise ConfigError(f"accuracy matrix has shape {R.shape}; allowed: [rows <= tasks, tasks]")
    k = R.shape[0] - 1 if after is None else after
    if not 0 <= k < R.shape[0]:
        raise ConfigError(f"after={after} is invalid; allowed: 0..{R.shape[0] - 1}")
    return R, k


def average_accuracy(matrix: ArrayLike, after: int | None = None) -> float:
    """Mean accuracy over the tasks trained so far: ``A_k = 1/(k+1) Σ_{j≤k} R[k, j]``."""
    R, k = _rows(matrix, after)
    return float(R[k, : k + 1].mean())


def learning_accuracy(matrix: ArrayLike, after: int | None = None) -> float:
    """Mean accuracy on each task just after learning it: ``LA = 1/(k+1) Σ_{j≤k} R[j, j]``."""
    R, k = _rows(matrix, after)
    return float(np.diag(R)[: k + 1].mean())


def backward_transfer(matrix: ArrayLike, after: int | None = None) -> float:
    """How training later tasks changed earlier ones (Lopez-Paz & Ranzato 2017).

    ``BWT = 1/k Σ_{j<k} (R[k, j] − R[j, j])``; negative means forgetting.
    """
    R, k = _rows(matrix, after)
    if k == 0:
        return float("nan")
    return float(np.mean(R[k, :k] - np.diag(R)[:k]))


def forward_transfer(matrix: ArrayLike, baseline: ArrayLike, after: int | None = None) -> float:
    """How earlier tasks help a task before it is trained (Lopez-Paz & Ranzato 2017).

    ``FWT = 1/k Σ_{1≤j≤k} (R[j−1, j] − b[j])`` with ``b[j]`` the untrained network's
    accuracy on task ``j``.
    """
    R, k = _rows(matrix, after)
    b = np.asarray(baseline, dtype=np.float64)
    if b.shape != (R.shape[1],):
        raise ConfigError(f"baseline has shape {b.shape}; allowed: ({R.shape[1]},)")
    if k == 0:
        return float("nan")
    return float(np.mean([R[j - 1, j] - b[j] for j in range(1, k + 1)]))


def forgetting(matrix: ArrayLike, after: int | None = None) -> float:
    """Average forgetting (Chaudhry et al. 2018).

    ``F = 1/k Σ_{j<k} max_{j≤l<k} (R[l, j] − R[k, j])``: the drop from each earlier task's
    best accuracy to its accuracy now.
    """
    R, k = _rows(matrix, after)
    if k == 0:
        return float("nan")
    return float(np.mean([R[j:k, j].max() - R[k, j] for j in range(k)]))


def summarize(matrix: ArrayLike, baseline: ArrayLike | None = None) -> dict[str, float]:
    """All scores after the last trained row, as a flat dict for tables and loggers."""
    scores = {
        "average_accuracy": average_accuracy(matrix),
        "learning_accuracy": learning_accuracy(matrix),
        "backward_transfer": backward_transfer(matrix),
        "forgetting": forgetting(matrix),
    }
    if baseline is not None:
        scores["forward_transfer"] = forward_transfer(matrix, baseline)
    return scores
