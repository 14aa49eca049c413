"""``continual report``: one Markdown and one self-contained HTML page comparing runs."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from continual.errors import ConfigError
from continual.result import Result, atomic_write
from continual.tracking.plots import plot_run

# (summary key, column, scale, format); ``task_il_*``: the task-incremental reading of a
# class-incremental run; ``total s`` is training + the strategy's own work + evaluation.
SCORES = [("average_accuracy", "avg acc %", 100, ".1f"),
          ("task_il_average_accuracy", "task-IL acc %", 100, ".1f"),
          ("learning_accuracy", "learning acc %", 100, ".1f"),
          ("backward_transfer", "BWT %", 100, ".1f"), ("forward_transfer", "FWT %", 100, ".1f"),
          ("forgetting", "forgetting %", 100, ".1f"),
          ("task_il_forgetting", "task-IL forgetting %", 100, ".1f"),
          ("total_seconds", "total s", 1, ".2f"), ("train_seconds", "train s", 1, ".2f"),
          ("strategy_seconds", "strategy s", 1, ".2f"), ("eval_seconds", "eval s", 1, ".2f"),
          ("train_samples", "train samples", 1, ",.0f")]


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders among ``paths``: a run itself, or a ``compare`` folder's runs."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if (path / "results.json").is_file():
            runs.append(path)
        else:
            runs += sorted(p.parent for p in path.glob("*/results.json"))
    return runs


def write_report(paths: list[str | Path], output: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``output``; returns both paths.

    Plots are drawn afresh from each ``results.json``, so runs stopped early (fewer rows than
    tasks) are reported as far as they went.
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"output={str(output)!r} is a file; allowed: a folder for the report")
    runs = find_runs(paths)
    if not runs:
        raise FileNotFoundError(f"no results.json under {', '.join(map(str, paths))}")
    results = [(run, Result.load(run)) for run in runs]
    names = _unique_names(runs)
    summary = _summary_rows(results, names)
    warning = _setup_warning(results)
    md = ["# continual report", "", *([warning, ""] if warning else []), _table_md(*summary), ""]
    body = ["<h1>continual report</h1>",
            f"<p>{html.escape(warning).replace('**', '')}</p>" if warning else "",
            _table_html(*summary)]
    for folder_plot in _folder_plots(paths):  # a compare folder's own plots (cost vs accuracy)
        md += [f"![{folder_plot.stem}]({folder_plot.resolve()})", ""]
        body.append(f'<img alt="{folder_plot.stem}" src="data:image/png;base64,'
                    f'{base64.b64encode(folder_plot.read_bytes()).decode()}">')
    for (run, result), name in zip(results, names):
        plots = plot_run(result, output / "plots" / name)
        state = "complete" if result.complete else \
            f"stopped after task {len(result.matrix) - 1} of {result.matrix.shape[1]}"
        tables = _matrix_tables(result)
        md += [f"## {name}", "", f"`{run}` · {result.strategy} · seed {result.seed} · {state}", ""]
        body += [f"<h2>{html.escape(name)}</h2>",
                 f"<p><code>{html.escape(str(run))}</code> · {html.escape(result.strategy)} · "
                 f"seed {result.seed} · {state}</p>"]
        for caption, rows in tables:
            md += [f"{caption}:", "", _table_md(*rows), ""] if caption else [_table_md(*rows), ""]
            body += [f"<p>{html.escape(caption)}:</p>" if caption else "", _table_html(*rows)]
        md += [f"![{key}]({p.relative_to(output)})" for key, p in plots.items()] + [""]
        body += [f'<img alt="{key}" src="data:image/png;base64,'
                 f'{base64.b64encode(p.read_bytes()).decode()}">' for key, p in plots.items()]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:right}img{max-width:48%;margin:4px}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>continual report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
    md_path, html_path = output / "report.md", output / "report.html"
    atomic_write(md_path, "\n".join(md) + "\n")
    atomic_write(html_path, page)
    return md_path, html_path


def _folder_plots(paths: list[str | Path]) -> list[Path]:
    """The plots a compare folder among ``paths`` holds beside its runs."""
    return [p for path in map(Path, paths) if not (path / "results.json").is_file()
            for p in sorted(path.glob("*.png"))]


def _unique_names(runs: list[Path]) -> list[str]:
    names = [run.name for run in runs]
    return [f"{run.parent.name}/{run.name}" if names.count(run.name) > 1 else run.name
            for run in runs]


def _fmt(value: float | None, scale: float, spec: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    return format(value * scale, spec)


SETUP = ["dataset", "scenario", "net", "epochs", "seed"]


def setup_of(result: Result) -> list[str]:
    """What a run was trained on and with: the columns that must match for its scores to be
    compared with another run's (``-`` where a run's results predate the field)."""
    stream, setup = result.stream or {}, result.setup or {}
    epochs = (setup.get("trainer") or {}).get("max_epochs")
    return [str(stream.get("name", "-")), str(stream.get("scenario", "-")),
            str(setup.get("net", "-")), "-" if epochs is None else str(epochs),
            str(result.seed)]


def _summary_rows(results, names):
    header = ["run", *SETUP, "tasks trained", *[label for _, label, _, _ in SCORES]]
    rows = [[name, *setup_of(r), f"{len(r.matrix)}/{r.matrix.shape[1]}",
             *[_fmt(r.summary.get(key, float("nan")), scale, spec)
               for key, _, scale, spec in SCORES]]
            for (_, r), name in zip(results, names)]
    return header, rows


def _setup_warning(results) -> str:
    """A line naming the set-up columns that differ between the runs (seeds aside), or ''."""
    setups = [setup_of(r)[:-1] for _, r in results]
    differ = [col for i, col in enumerate(SETUP[:-1]) if len({s[i] for s in setups}) > 1]
    return (f"**Warning**: these runs differ in {', '.join(differ)}: their scores are not "
            "comparable as one table.") if differ else ""


def _matrix_tables(result: Result) -> list[tuple[str, tuple[list[str], list[list[str]]]]]:
    """The matrix (captioned, with the task-incremental one, on a class-incremental run)."""
    if result.task_il_matrix is None:
        return [("", _matrix_rows(result.matrix, result.baseline))]
    return [("class-incremental accuracy %", _matrix_rows(result.matrix, result.baseline)),
            ("task-incremental accuracy % (each prediction among its task's classes)",
             _matrix_rows(result.task_il_matrix))]


def _matrix_rows(matrix, baseline=None):
    n = matrix.shape[1]
    header = ["after task", *[f"T{j}" for j in range(n)]]
    rows = [[str(i), *[_fmt(v, 100, ".1f") for v in row]] for i, row in enumerate(matrix)]
    if baseline is not None:
        rows.append(["untrained", *[_fmt(v, 100, ".1f") for v in baseline]])
    return header, rows


def _table_md(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
                      *["| " + " | ".join(row) + " |" for row in rows]])


def _table_html(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
