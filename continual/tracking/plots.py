"""Matplotlib figures of a run, written as PNG files (headless: the Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from continual.result import Result  # noqa: E402


def _full_matrix(result: Result) -> np.ndarray:
    """The matrix padded with NaN rows for tasks not trained yet: always ``[T, T]``."""
    n = result.matrix.shape[1]
    full = np.full((n, n), np.nan)
    full[: len(result.matrix)] = result.matrix
    return full


def plot_matrix(result: Result, path: str | Path, title: str | None = None) -> Path:
    """Heatmap of ``R[i, j]`` in percent, each cell labelled; untrained rows left blank."""
    return _save(matrix_figure(result, title), path)


def matrix_figure(result: Result, title: str | None = None):
    """The figure :func:`plot_matrix` saves."""
    R = 100 * _full_matrix(result)
    n = R.shape[0]
    size = 1.6 + 0.55 * n
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(np.ma.masked_invalid(R), cmap="viridis", vmin=0, vmax=100)
    for i in range(n):
        for j in range(n):
            if not np.isnan(R[i, j]):
                ax.text(j, i, f"{R[i, j]:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if R[i, j] < 60 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("evaluated on task j")
    ax.set_ylabel("after training task i")
    ax.set_title(title or result.strategy, fontsize=9)
    fig.colorbar(image, ax=ax, label="accuracy %", fraction=0.046, pad=0.04)
    return fig


def plot_forgetting(result: Result, path: str | Path, title: str | None = None) -> Path:
    """One line per task: its accuracy (y) as more tasks are trained (x), from when it is learned.

    The dotted part before a task's own training shows accuracy on a task not trained yet.
    """
    return _save(forgetting_figure(result, title), path)


def forgetting_figure(result: Result, title: str | None = None):
    """The figure :func:`plot_forgetting` saves."""
    R = 100 * _full_matrix(result)
    n = R.shape[0]
    trained = len(result.matrix)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colors = plt.cm.viridis(np.linspace(0, 0.9, n))
    for j in range(n):
        x = np.arange(trained)
        ax.plot(x[j:], R[j:trained, j], marker="o", color=colors[j], label=f"task {j}")
        if j > 0:
            ax.plot(x[: j + 1], R[: min(j + 1, trained), j], ls=":", color=colors[j], alpha=0.6)
    ax.set_xlim(-0.2, n - 0.8)
    ax.set_ylim(-2, 102)
    ax.set_xticks(range(n))
    ax.set_xlabel("tasks trained (index of the last one)")
    ax.set_ylabel("test accuracy %")
    ax.set_title(title or result.strategy, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if n > 6 else 1, loc="best")
    return fig


def plot_cost_accuracy(results: Mapping[str, Sequence[Result]], path: str | Path) -> Path:
    """Final average accuracy against training seconds, one point per strategy (± std)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, runs in results.items():
        acc = np.array([100 * r.summary["average_accuracy"] for r in runs])
        cost = np.array([r.summary["train_seconds"] for r in runs])
        ax.errorbar(cost.mean(), acc.mean(), xerr=_spread(cost), yerr=_spread(acc), fmt="o",
                    capsize=3)
        ax.annotate(name, (cost.mean(), acc.mean()), textcoords="offset points", xytext=(5, 5),
                    fontsize=8)
    ax.set_xlabel("training time (s, all tasks)")
    ax.set_ylabel("final average accuracy %")
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)
    ax.set_title("accuracy against training cost (mean ± std over seeds)", fontsize=9)
    return _save(fig, path)


def plot_run(result: Result, run_dir: str | Path) -> dict[str, Path]:
    """The standard figures of one run, into its folder."""
    run_dir = Path(run_dir)
    return {"accuracy_heatmap": plot_matrix(result, run_dir / "accuracy_matrix.png"),
            "forgetting": plot_forgetting(result, run_dir / "forgetting.png")}


def _spread(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
