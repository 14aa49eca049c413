"""Accuracy over time, one line per policy, with retrain/deploy markers and the drift points."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from continual.retraining.simulate import PolicyRun  # noqa: E402


def plot_policies(runs: dict[str, PolicyRun], path: str | Path, title: str = "") -> Path:
    """Prequential accuracy per step; ×: retrained and kept the champion; ●: deployed."""
    fig, ax = plt.subplots(figsize=(9, 4.2))
    drift_points = next(iter(runs.values())).drift_points if runs else []
    for d in drift_points:
        ax.axvline(d, color="0.6", linestyle="--", linewidth=1)
    for i, (name, run) in enumerate(runs.items()):
        steps = [s.step for s in run.steps]
        acc = [100 * s.accuracy for s in run.steps]
        # Ten colours, then the same colours dashed, then dotted: every policy stays apart.
        (line,) = ax.plot(steps, acc, label=name, linewidth=1.4, color=f"C{i % 10}",
                          linestyle=("-", "--", ":")[i // 10 % 3])
        deployed = [(s.step, 100 * s.accuracy) for s in run.steps if s.deployed]
        rejected = [(s.step, 100 * s.accuracy) for s in run.steps if s.retrained
                    and not s.deployed]
        if deployed:
            ax.scatter(*zip(*deployed), color=line.get_color(), marker="o", s=22, zorder=3)
        if rejected:
            ax.scatter(*zip(*rejected), color=line.get_color(), marker="x", s=30, zorder=3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step (chunk)")
    ax.set_ylabel("prequential accuracy %")
    ax.set_ylim(0, 102)
    ax.set_title(title or "accuracy over time (dashed: drift; ●: deployed; ×: kept champion)",
                 fontsize=10)
    ax.legend(fontsize=8, loc="lower left", ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
