"""Readable console tables: the accuracy matrix and a comparison of strategies."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from continual.result import Result


def _pct(v: float) -> str:
    return "   -" if math.isnan(v) else f"{100 * v:5.1f}"


def matrix_table(result: Result) -> str:
    """The accuracy matrix in percent, one row per trained task, plus the summary line."""
    n = result.matrix.shape[1]
    lines = ["after task | " + " ".join(f"  T{j:<2}" for j in range(n)) + " |   avg"]
    lines.append("-" * len(lines[0]))
    for i, row in enumerate(result.matrix):
        avg = float(np.mean(row[: i + 1]))
        lines.append(f"{i:>10} | " + " ".join(f"{_pct(v)}" for v in row) + f" | {_pct(avg)}")
    lines.append(f"{'untrained':>10} | " + " ".join(_pct(v) for v in result.baseline) + " |")
    s = result.summary
    lines.append(
        f"{result.strategy}: average accuracy {_pct(s.get('average_accuracy', math.nan))}%, "
        f"BWT {_pct(s.get('backward_transfer', math.nan))}, "
        f"forgetting {_pct(s.get('forgetting', math.nan))}, "
        f"training {s['train_seconds']:.1f} s on {s['train_samples']:,} samples"
    )
    return "\n".join(lines)


def _mean_std(values: Sequence[float], scale: float = 100.0, fmt: str = ".1f") -> str:
    arr = np.asarray(values, dtype=np.float64) * scale
    if len(arr) == 1:
        return f"{arr[0]:{fmt}}"
    return f"{arr.mean():{fmt}} ± {arr.std(ddof=1):{fmt}}"


def compare_table(results: dict[str, list[Result]]) -> str:
    """One line per strategy: final scores and cost, mean ± std over seeds."""
    header = ["strategy", "avg acc %", "BWT %", "forgetting %", "train s", "train samples"]
    rows = []
    for name, runs in results.items():
        s = [r.summary for r in runs]
        rows.append([
            name,
            _mean_std([x["average_accuracy"] for x in s]),
            _mean_std([x["backward_transfer"] for x in s]),
            _mean_std([x["forgetting"] for x in s]),
            _mean_std([x["train_seconds"] for x in s], scale=1.0, fmt=".2f"),
            _mean_std([x["train_samples"] for x in s], scale=1.0, fmt=".0f"),
        ])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])
