"""Lightning loggers for a run: any ``Logger`` by class path, and what each receives.

A logger is named by a short alias (``csv``, ``tensorboard``, ``wandb``) or, like every other
class in a config, by class path: ``{class_path: lightning.pytorch.loggers.CSVLogger,
init_args: {flush_logs_every_n_steps: 10}}``. Any subclass of Lightning's ``Logger`` works; the
run folder is given as its ``save_dir`` (or ``root_dir``) unless ``init_args`` set one. An alias
is its class with the run's defaults, which the class-path form of the same class gets too
(``csv`` writes ``logs/metrics.csv``, ``tensorboard`` writes ``tensorboard/``).

Every logger gets one row per task (accuracy on every task, on a class-incremental stream also
the task-incremental reading ``accuracy_task_il/*``, the scores so far, the task's cost) against
the ``task`` index, and while a task trains the training curves (``train/loss``, ``train/lr``,
``train/samples_per_second`` every ``trainer.log_every_n_steps`` steps, ``val/*`` after each
validation) against the run's global step, which continues from task to task
(:mod:`continual.tracking.live`). In W&B the task rows sit at the global step their task ended
and ``define_metric`` gives ``accuracy/*``, ``summary/*`` and ``cost/*`` the ``task`` axis, the
curves ``trainer/global_step``; in CSV and TensorBoard the task rows' step is the task index.
W&B also gets the matrices as tables, the heatmap and the forgetting plot as images, the
summary, the resolved config, and a group and tags so the runs of one ``compare`` sit together.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib
import importlib.util
import inspect
import io
import json
import netrc
import os
import re
import socket
import sys
import urllib.parse
import uuid
import warnings
from argparse import ArgumentError
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger

from continual.cli_errors import one_line
from continual.errors import ConfigError, missing_extra
from continual.result import Result, atomic_write

#: What a config's ``logger`` list holds: an alias or class path, or ``{class_path, init_args}``.
LoggerSpec = str | dict[str, Any]

ALIASES = {
    "csv": "lightning.pytorch.loggers.CSVLogger",
    "tensorboard": "lightning.pytorch.loggers.TensorBoardLogger",
    "wandb": "lightning.pytorch.loggers.WandbLogger",
}
ALLOWED = ("csv, tensorboard, wandb, or {class_path: <a lightning.pytorch.loggers.Logger "
           "subclass>, init_args: {...}}")

# What each task row tells of its cost (TaskCost's fields, and their total).
COST_PARTS = ("total_seconds", "train_seconds", "strategy_seconds", "eval_seconds",
              "train_samples", "train_steps", "memory_bytes")

# WandbLogger's own step axis: it adds this key to every row it is given a step for.
WANDB_STEP = "trainer/global_step"

# Packages a logger class needs that are optional extras of this project.
_NEEDS = [(TensorBoardLogger, ("tensorboard", "tensorboardX"), "tensorboard")]


@dataclass(frozen=True)
class ResolvedLogger:
    """One ``logger`` entry, checked: its class and the ``init_args`` the config gave."""

    cls: type[Logger]
    path: str  # its import path (an alias resolved)
    init_args: dict[str, Any]
    label: str  # how the config named it, for messages


def check_loggers(specs: Sequence[LoggerSpec]) -> list[ResolvedLogger]:
    """Resolve and validate ``specs`` without building anything (no files, no W&B run).

    Raises :class:`ConfigError` (one line) for an unknown name or class, wrong ``init_args``,
    or a logger whose optional package is not installed.
    """
    resolved, seen = [], set()
    for spec in specs:
        key = json.dumps(spec, sort_keys=True, default=str)
        if key in seen:  # each once, in order
            continue
        seen.add(key)
        entry = _resolve(spec)
        _check_installed(entry)
        _validate(entry)
        resolved.append(entry)
    return resolved


def make_loggers(
    specs: Sequence[LoggerSpec],
    run_dir: Path,
    *,
    name: str,
    group: str | None = None,
    tags: Sequence[str] = (),
    config: dict | None = None,
    quiet: bool = False,
) -> list[Logger]:
    """Loggers writing into ``run_dir``; W&B falls back to offline mode without credentials.

    Every logger is built before any is started, so a logger that cannot be built leaves
    nothing behind. ``quiet`` silences W&B's own console lines (its start banner and the
    closing history), unless the logger's ``init_args`` give ``settings`` themselves.
    """
    context = {"run_dir": Path(run_dir), "name": name, "group": group, "tags": list(tags),
               "config": config, "quiet": quiet}
    entries = check_loggers(specs)
    made = [_build(entry, context) for entry in entries]
    for i, (entry, logger) in enumerate(zip(entries, made)):
        if isinstance(logger, WandbLogger):
            made[i] = _start_wandb_or_offline(entry, logger, context)
    return made


def _start_wandb_or_offline(entry: ResolvedLogger, logger: WandbLogger, context: dict
                            ) -> WandbLogger:
    """Start ``logger``; if an online start fails (server down, key refused, timeout), the
    run goes on logging offline, and says so in one line on stderr."""
    online = not context.get("offline_chosen", {}).get(id(entry), True)
    try:
        _start_wandb(logger, context.get("quiet", False))
        return logger
    except Exception as e:  # wandb raises its own CommError, UsageError, timeouts …
        if not online:
            raise ConfigError(f"logger: {entry.label} cannot start: "
                              f"{_first_line(e)}") from None
        _say_offline(f"the server did not accept the run ({_first_line(e)})", context["run_dir"])
    offline = _build(entry, {**context, "force_offline": True})
    _start_wandb(offline, context.get("quiet", False))
    return offline


def _first_line(e: BaseException) -> str:
    """``e``'s message on one line (pydantic's, as wandb's settings raise, spans several)."""
    text = " ".join(str(e).split())
    return text[:300] if text else type(e).__name__


def _resolve(spec: Any) -> ResolvedLogger:
    if hasattr(spec, "as_dict"):  # a jsonargparse Namespace
        spec = spec.as_dict()
    if isinstance(spec, str) and spec:
        path, init_args = spec, {}
    elif isinstance(spec, dict) and isinstance(spec.get("class_path"), str) \
            and set(spec) <= {"class_path", "init_args"} \
            and isinstance(spec.get("init_args") or {}, dict):
        path, init_args = spec["class_path"], dict(spec.get("init_args") or {})
    else:
        raise ConfigError(f"logger: {spec!r} is not valid; allowed: {ALLOWED}")
    full = ALIASES.get(path.lower(), path)
    module_name, _, attr = full.rpartition(".")
    try:
        module = importlib.import_module(module_name or "lightning.pytorch.loggers")
        cls = getattr(module, attr)
    except ImportError as e:
        raise ConfigError(f"logger: {path!r} cannot be imported ({e}); allowed: "
                          f"{ALLOWED}") from None
    except AttributeError:
        raise ConfigError(f"logger: {path!r} is unknown; allowed: {ALLOWED}") from None
    if not (inspect.isclass(cls) and issubclass(cls, Logger)):
        raise ConfigError(f"logger: {path!r} is not a Lightning Logger; allowed: {ALLOWED}")
    return ResolvedLogger(cls, full if module_name else f"lightning.pytorch.loggers.{full}",
                          init_args, path)


def _check_installed(entry: ResolvedLogger) -> None:
    for base, modules, extra in _NEEDS:
        if issubclass(entry.cls, base) and not any(_importable(m) for m in modules):
            raise ConfigError(missing_extra(f"logger: {entry.label}", modules[0], extra))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _validate(entry: ResolvedLogger) -> None:
    """Check ``init_args`` against the class signature, as jsonargparse does for any class."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--logger", type=Logger)
    args = {**{k: "." for k in ("save_dir", "root_dir") if _accepts(entry.cls, k, named=True)},
            **entry.init_args}  # the run folder comes later; its place is filled
    try:
        parser.parse_object({"logger": {"class_path": entry.path, "init_args": args}})
    except (ArgumentError, ValueError, TypeError) as e:
        text = re.sub(r"^logger(?:: |\.)(?:class_path '[\w.]+': )?", "", one_line(str(e)))
        text = re.sub(r'Parser key "([\w.]+)": ', r"init_args.\1: ", text)
        raise ConfigError(f"logger: {entry.label}: {text}") from None


def _accepts(cls: type, key: str, named: bool = False) -> bool:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return key in params or (not named and any(p.kind is p.VAR_KEYWORD
                                               for p in params.values()))


def _defaults(entry: ResolvedLogger, context: dict) -> dict[str, Any]:
    """What this run gives the class unless ``init_args`` say otherwise."""
    run_dir, cls = context["run_dir"], entry.cls
    if issubclass(cls, WandbLogger):
        defaults = {"name": context["name"], "save_dir": str(run_dir),
                    "project": os.environ.get("WANDB_PROJECT", "continual"),
                    "group": context["group"], "tags": context["tags"],
                    "config": context["config"],
                    # one W&B run per run folder: a resumed run continues the killed one
                    "id": wandb_run_id(run_dir), "resume": "allow"}
        if context.get("force_offline"):
            defaults["offline"] = True
        elif not {"offline", "mode"} & set(entry.init_args):
            defaults["offline"] = wandb_offline_fallback(run_dir)
            context.setdefault("offline_chosen", {})[id(entry)] = defaults["offline"]
            # an unresponsive server ends the start in bounded time (wandb waits 90 s)
            defaults["settings"] = {"init_timeout": WANDB_INIT_TIMEOUT}
        if context.get("quiet"):
            defaults["settings"] = {**defaults.get("settings", {}), "silent": True}
    elif issubclass(cls, CSVLogger):
        defaults = {"save_dir": str(run_dir), "name": "", "version": "logs"}
    elif issubclass(cls, TensorBoardLogger):
        defaults = {"save_dir": str(run_dir), "name": "", "version": "tensorboard"}
    else:  # any other Logger: the run folder, where its signature names one
        return {k: str(run_dir) for k in ("save_dir", "root_dir") if _accepts(cls, k, named=True)}
    return {k: v for k, v in defaults.items() if _accepts(cls, k)}


def _build(entry: ResolvedLogger, context: dict) -> Logger:
    kwargs = {**_defaults(entry, context), **entry.init_args}
    try:
        return entry.cls(**kwargs)
    except ImportError as e:  # e.g. Lightning's own check of an optional package
        for base, modules, extra in _NEEDS:
            if issubclass(entry.cls, base) or (e.name or "").split(".")[0] in modules:
                raise ConfigError(missing_extra(f"logger: {entry.label}", modules[0],
                                                extra)) from None
        raise ConfigError(f"logger: {entry.label} cannot be built: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    except (TypeError, ValueError) as e:  # the class rejected the config's init_args
        raise ConfigError(f"logger: {entry.label} cannot be built: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


# Seconds W&B may take to start a run online before the run logs offline instead.
WANDB_INIT_TIMEOUT = 30.0
# Seconds to wait for W&B's server to accept a connection, checked before going online.
WANDB_CONNECT_TIMEOUT = 5.0


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id of ``run_dir``, made on its first start and kept in ``.wandb_id`` there,
    so every start of the run (``--resume`` included) logs to the same W&B run."""
    path = Path(run_dir) / ".wandb_id"
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    atomic_write(path, run_id + "\n")
    return run_id


def wandb_offline_fallback(run_dir: Path) -> bool:
    """Whether W&B must log offline: no WANDB_MODE and no credentials, or credentials but a
    server that accepts no connection; says why on stderr."""
    if os.environ.get("WANDB_MODE") is not None:
        return False  # the user's own choice
    if not has_wandb_credentials():
        _say_offline("no credentials found", run_dir)
        return True
    problem = wandb_unreachable()
    if problem:
        _say_offline(problem, run_dir)
        return True
    return False


def _say_offline(why: str, run_dir: Path) -> None:
    # on stderr even in quiet mode: the user must know the run is not uploaded
    print(f"W&B: {why}, logging offline under {run_dir}/wandb "
          f"(upload later with `wandb sync {run_dir}/wandb/offline-run-*`)", file=sys.stderr)


def wandb_unreachable(timeout: float = WANDB_CONNECT_TIMEOUT) -> str | None:
    """Why W&B's server (``WANDB_BASE_URL``) cannot be reached, or ``None`` when it accepts a
    connection (or a proxy is configured, through which only wandb itself can tell)."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                                       "http_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    try:
        parts = urllib.parse.urlsplit(url if "//" in url else f"https://{url}")
        port = parts.port or (80 if parts.scheme == "http" else 443)
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return None
    except (OSError, ValueError) as e:  # refused, no route, no such host, timed out
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        return f"the server {url} cannot be reached ({reason})"


def _start_wandb(logger: WandbLogger, quiet: bool = False) -> None:
    # Quiet: wandb's start-up warnings (e.g. the deprecated `anonymous` setting Lightning
    # passes) are written to this process's stderr before its `silent` setting applies.
    with contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
        run = logger.experiment
    run.define_metric("task")
    for pattern in ("accuracy/*", "accuracy_task_il/*", "summary/*", "cost/*"):
        run.define_metric(pattern, step_metric="task")
    for pattern in ("train/*", "val/*"):  # the curves: one axis over the whole stream
        run.define_metric(pattern, step_metric=WANDB_STEP)


def has_wandb_credentials() -> bool:
    """An API key in the environment or in ``~/.netrc`` (where ``wandb login`` writes it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("//")[-1]
    return base.split("/")[0] in hosts


def resume_csv_logs(loggers: Sequence[Logger], result: Result, steps_done: int) -> None:
    """On resume, keep what each CSV logger already wrote for the work that is kept.

    Lightning's CSV writer starts ``metrics.csv`` afresh in a folder that holds one, which
    would delete the rows of the tasks already finished. Instead the old file is set aside
    (``.metrics.csv.resumed``), its rows for the finished tasks (``result``'s rows, one per
    task; a task row missing or cut short by a kill is made again from ``result``) and for the
    training curve up to ``steps_done`` (the steps a resumed run does not train again) are
    logged again, saved, and only then is the set-aside copy removed: a kill at any moment
    leaves the rows on disk in one of the two files, and the next resume reads the copy first.
    """
    tasks_done = len(result.matrix)
    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        kept = path.with_name(".metrics.csv.resumed")
        if path.is_file() and not kept.is_file():
            os.replace(path, kept)
        rows = _kept_rows(kept, tasks_done, steps_done) if kept.is_file() else []
        found = {int(m["task"]) for _, m in rows if "task" in m}
        rows += [(i, _task_metrics(_first_rows(result, i + 1), i))
                 for i in range(tasks_done) if i not in found]
        with warnings.catch_warnings():  # "... will be deleted": not so, they are written again
            warnings.filterwarnings("ignore", message="Experiment logs directory")
            logger.experiment  # noqa: B018 (the writer starts here, and clears the folder's file)
        for step, metrics in rows:
            logger.log_metrics(metrics, step=step)
        if rows:
            logger.save()
        kept.unlink(missing_ok=True)


def _first_rows(result: Result, n: int) -> Result:
    """``result`` as it stood after its first ``n`` tasks."""
    task_il = None if result.task_il_matrix is None else result.task_il_matrix[:n]
    return dataclasses.replace(result, matrix=result.matrix[:n], task_il_matrix=task_il,
                               cost=result.cost[:n])


def _kept_rows(path: Path, tasks_done: int, steps_done: int
               ) -> list[tuple[int, dict[str, float]]]:
    """``path``'s rows, as ``(step, metrics)``, of tasks ``< tasks_done`` (the first row of
    each) and of curve points at steps ``<= steps_done``; a row cut short by a kill is left."""
    rows, tasks = [], set()
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            table = list(csv.DictReader(f))
    except (OSError, csv.Error):
        return []
    for row in table:
        if None in row or None in row.values() or not row.get("step"):
            continue  # more or fewer fields than the header: cut short
        try:
            step = int(float(row["step"]))
            metrics = {k: float(v) for k, v in row.items() if k != "step" and v != ""}
        except ValueError:
            continue
        task = metrics.get("task")
        if task is None and step <= steps_done:
            rows.append((step, metrics))
        elif task is not None and task < tasks_done and task not in tasks:
            tasks.add(task)
            rows.append((step, metrics))
    return rows


def log_task(loggers: Sequence[Logger], result: Result, i: int) -> None:
    """Row ``i`` of the matrix (and of the task-incremental one), the scores so far and the
    task's cost, against ``task = i``; every logger saves what it holds (CSV writes its rows).

    The step is ``i``, but in W&B, where it is the run's global step (the steps trained up
    to task ``i``'s end) and the ``task`` key is the task rows' own axis.
    """
    metrics = _task_metrics(result, i)
    global_step = sum(c.train_steps for c in result.cost[: i + 1])
    for logger in loggers:
        logger.log_metrics(metrics, step=global_step if isinstance(logger, WandbLogger) else i)
        logger.save()


def _task_metrics(result: Result, i: int) -> dict[str, float]:
    """Task ``i``'s row: its accuracies, the scores of ``result`` and the task's cost."""
    metrics = {f"accuracy/task_{j}": float(v) for j, v in enumerate(result.matrix[i])}
    if result.task_il_matrix is not None:
        metrics.update({f"accuracy_task_il/task_{j}": float(v)
                        for j, v in enumerate(result.task_il_matrix[i])})
    metrics.update({f"summary/{k}": float(v) for k, v in result.summary.items()})
    cost = result.cost[i]
    metrics.update({f"cost/{k}": float(getattr(cost, k)) for k in COST_PARTS})
    metrics["task"] = float(i)
    return metrics


def log_final(loggers: Sequence[Logger], result: Result, plots: dict[str, Path]) -> None:
    """The summary to every logger; the matrix table and the plots to W&B; then close."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            n = result.matrix.shape[1]
            matrices = {"accuracy_matrix": result.matrix,
                        "accuracy_matrix_task_il": result.task_il_matrix}
            tables = {key: wandb.Table(columns=["after_task", *[f"task_{j}" for j in range(n)]],
                                       data=[[i, *map(float, row)] for i, row in enumerate(m)])
                      for key, m in matrices.items() if m is not None}
            images = {key: wandb.Image(str(path)) for key, path in plots.items()}
            logger.experiment.log({**tables, **images})
            logger.experiment.summary.update(result.summary)
            logger.finalize("success")
            logger.experiment.finish()
        else:
            logger.log_hyperparams({f"final/{k}": v for k, v in result.summary.items()})
            logger.finalize("success")
