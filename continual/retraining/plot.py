"""Accuracy over time per policy, with retrain/deploy markers and the drift points.

A few policies share one axis; more get one small panel each (the others drawn faint behind
it, for reference), since a dozen lines on one axis hide each other and identical policies
hide completely.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from continual.retraining.simulate import PolicyRun  # noqa: E402

SHARED_AXIS_MAX = 4  # policies drawn on one axis; more get small multiples


def plot_policies(runs: dict[str, PolicyRun], path: str | Path, title: str = "",
                  only: list[str] | None = None) -> Path:
    """Prequential accuracy per step; ×: retrained and kept the champion; ●: deployed.

    ``only`` draws those policies alone (in their order); unknown names are ignored.
    """
    if only:
        runs = {name: runs[name] for name in only if name in runs}
    drift_points = next(iter(runs.values())).drift_points if runs else []
    if len(runs) <= SHARED_AXIS_MAX:
        fig, ax = plt.subplots(figsize=(9, 4.2))
        for i, (name, run) in enumerate(runs.items()):
            _draw(ax, run, name, f"C{i}")
        _frame(ax, drift_points)
        ax.legend(fontsize=8, loc="lower left", ncol=2)
        axes = [ax]
    else:
        cols = 3 if len(runs) <= 9 else 4
        rows = math.ceil(len(runs) / cols)
        fig, grid = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.3 * rows + 0.6),
                                 sharex=True, sharey=True, squeeze=False)
        axes = list(grid.flat)
        for ax, (name, run) in zip(axes, runs.items()):
            for other in runs.values():  # the rest, faint: where this policy stands
                ax.plot([s.step for s in other.steps], [100 * s.accuracy for s in other.steps],
                        color="0.85", linewidth=0.8, zorder=1)
            _draw(ax, run, None, "C0")
            _frame(ax, drift_points)
            ax.set_title(name, fontsize=9)
        for ax in axes[len(runs):]:
            ax.set_visible(False)
        for ax in axes:
            ax.label_outer()  # axis labels on the outer panels only
    fig.suptitle(title or "accuracy over time", fontsize=10)
    fig.text(0.99, 0.005, "dashed: drift · ●: deployed · ×: retrained, champion kept",
             ha="right", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _draw(ax: Axes, run: PolicyRun, label: str | None, color: str) -> None:
    steps = [s.step for s in run.steps]
    ax.plot(steps, [100 * s.accuracy for s in run.steps], label=label, linewidth=1.4,
            color=color, zorder=2)
    deployed = [(s.step, 100 * s.accuracy) for s in run.steps if s.deployed]
    rejected = [(s.step, 100 * s.accuracy) for s in run.steps if s.retrained and not s.deployed]
    if deployed:
        ax.scatter(*zip(*deployed), color=color, marker="o", s=18, zorder=3)
    if rejected:
        ax.scatter(*zip(*rejected), color=color, marker="x", s=24, zorder=3)


def _frame(ax: Axes, drift_points: list[int]) -> None:
    for d in drift_points:
        ax.axvline(d, color="0.6", linestyle="--", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, 102)
    ax.set_xlabel("step (chunk)", fontsize=8)
    ax.set_ylabel("prequential accuracy %", fontsize=8)
    ax.tick_params(labelsize=7)
