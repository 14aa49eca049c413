"""Matplotlib figures of a run, written as PNG files (headless: the Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from continual.result import Result  # noqa: E402


def _full_matrix(result: Result, matrix: np.ndarray | None = None) -> np.ndarray:
    """``matrix`` (default: the run's) padded with NaN rows for tasks not trained yet:
    always ``[T, T]``."""
    matrix = result.matrix if matrix is None else matrix
    n = matrix.shape[1]
    full = np.full((n, n), np.nan)
    full[: len(matrix)] = matrix
    return full


def plot_matrix(result: Result, path: str | Path, title: str | None = None) -> Path:
    """Heatmap of ``R[i, j]`` in percent, each cell labelled; untrained rows left blank.

    A class-incremental run's task-incremental matrix is drawn beside it.
    """
    return _save(matrix_figure(result, title), path)


def matrix_figure(result: Result, title: str | None = None):
    """The figure :func:`plot_matrix` saves: one panel per matrix, sharing the colour scale."""
    panels = [("", result.matrix)]
    if result.task_il_matrix is not None:
        panels = [("class-IL", result.matrix), ("task-IL", result.task_il_matrix)]
    n = result.matrix.shape[1]
    size = 1.6 + 0.55 * n
    fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * size + 1.2, size),
                             squeeze=False, layout="constrained")  # room for one colour bar
    for ax, (label, matrix) in zip(axes[0], panels):
        image = _heatmap(ax, 100 * _full_matrix(result, matrix))
        name = title or result.strategy
        ax.set_title(f"{name} · {label}" if label else name, fontsize=9)
    fig.colorbar(image, ax=list(axes[0]), label="accuracy %", fraction=0.046, pad=0.04)
    return fig


def _heatmap(ax, R: np.ndarray):
    n = R.shape[0]
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
    return image


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
    """Final average accuracy against the whole time each strategy cost, one point per
    strategy (± std over seeds): training + the strategy's own work + evaluation.

    A thin line runs back to where training alone would put the point, so the cost a
    strategy adds outside the fit (a Fisher, a memory update) shows as its length.
    """
    return _save(cost_accuracy_figure(results), path)


def cost_accuracy_figure(results: Mapping[str, Sequence[Result]]):
    """The figure :func:`plot_cost_accuracy` saves."""
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    for i, (name, runs) in enumerate(results.items()):
        acc = np.array([100 * r.summary["average_accuracy"] for r in runs])
        cost = np.array([r.summary["total_seconds"] for r in runs])
        train = np.mean([r.summary["train_seconds"] for r in runs])
        # Named in a legend, not beside the points: strategies of similar cost and accuracy
        # would print their names over each other. Ten colours, then other markers.
        color, marker = f"C{i % 10}", "osD^v"[i // 10 % 5]
        ax.errorbar(cost.mean(), acc.mean(), xerr=_spread(cost), yerr=_spread(acc),
                    fmt=marker, capsize=3, color=color, label=name)
        ax.plot([train, cost.mean()], [acc.mean()] * 2, color=color, alpha=0.4, lw=1)
        ax.plot([train], [acc.mean()], marker="|", ms=10, color=color, alpha=0.6)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    ax.set_xlabel("time (s, all tasks): training + strategy + evaluation; | training alone")
    ax.set_ylabel("final average accuracy %")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)
    ax.set_title("accuracy against the whole cost (mean ± std over seeds)", fontsize=9)
    return fig


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
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
