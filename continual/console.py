"""Readable console tables: the accuracy matrix and a comparison of strategies."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from continual.result import Result


def _pct(v: float) -> str:
    return "   -" if math.isnan(v) else f"{100 * v:5.1f}"


def matrix_table(result: Result) -> str:
    """The accuracy matrix in percent, one row per trained task, plus the summary line.

    On a class-incremental stream each row also shows its task-incremental average (the same
    logits, each prediction among its task's classes only).
    """
    n = result.matrix.shape[1]
    task_il = result.task_il_matrix
    extra = " | task-IL" if task_il is not None else ""
    lines = ["after task | " + " ".join(f"  T{j:<2}" for j in range(n)) + " |   avg" + extra]
    lines.append("-" * len(lines[0]))
    for i, row in enumerate(result.matrix):
        avg = float(np.mean(row[: i + 1]))
        cells = f"{i:>10} | " + " ".join(f"{_pct(v)}" for v in row) + f" | {_pct(avg)}"
        if task_il is not None:
            cells += f" |   {_pct(float(np.mean(task_il[i, : i + 1])))}"
        lines.append(cells)
    lines.append(f"{'untrained':>10} | " + " ".join(_pct(v) for v in result.baseline) + " |")
    s = result.summary
    task_il_avg = (f" (task-IL {_pct(s['task_il_average_accuracy']).strip()}%)"
                   if "task_il_average_accuracy" in s else "")
    lines.append(
        f"{result.strategy}: average accuracy {_pct(s.get('average_accuracy', math.nan))}%"
        f"{task_il_avg}, BWT {_pct(s.get('backward_transfer', math.nan))}, "
        f"forgetting {_pct(s.get('forgetting', math.nan))}, "
        f"{s['total_seconds']:.1f} s ({_seconds_parts(s)}) on {s['train_samples']:,} samples"
    )
    return "\n".join(lines)


def _seconds_parts(summary: dict[str, float]) -> str:
    return (f"training {summary['train_seconds']:.1f}, strategy "
            f"{summary['strategy_seconds']:.1f}, evaluation {summary['eval_seconds']:.1f}")


def _mean_std(values: Sequence[float], scale: float = 100.0, fmt: str = ".1f") -> str:
    arr = np.asarray(values, dtype=np.float64) * scale
    if len(arr) == 1:
        return f"{arr[0]:{fmt}}"
    return f"{arr.mean():{fmt}} ± {arr.std(ddof=1):{fmt}}"


def compare_table(results: dict[str, list[Result]]) -> str:
    """One line per strategy: final scores and cost, mean ± std over seeds.

    ``time s`` is everything a strategy costs (training + its own work + evaluation);
    ``train+strategy+eval s`` its parts (means). ``task-IL acc %`` (class-incremental streams)
    reads the same predictions among each task's classes only.
    """
    summaries = {name: [r.summary for r in runs] for name, runs in results.items()}
    task_il = any("task_il_average_accuracy" in x for s in summaries.values() for x in s)
    header = ["strategy", "avg acc %", *(["task-IL acc %"] if task_il else []), "BWT %",
              "forgetting %", "time s", "train+strategy+eval s", "train samples"]
    rows = []
    for name, s in summaries.items():
        parts = "+".join(f"{np.mean([x.get(k, math.nan) for x in s]):.1f}"
                         for k in ("train_seconds", "strategy_seconds", "eval_seconds"))
        rows.append([
            name,
            _mean_std([x["average_accuracy"] for x in s]),
            *([_mean_std([x.get("task_il_average_accuracy", math.nan) for x in s])]
              if task_il else []),
            _mean_std([x["backward_transfer"] for x in s]),
            _mean_std([x["forgetting"] for x in s]),
            _mean_std([x["total_seconds"] for x in s], scale=1.0, fmt=".1f"),
            parts,
            _mean_std([x["train_samples"] for x in s], scale=1.0, fmt=".0f"),
        ])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])
