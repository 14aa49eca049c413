"""Lightning loggers for a run: CSV, TensorBoard and Weights & Biases, and what each receives.

Every logger gets one row per task (accuracy on every task, the scores so far, the cost)
against the ``task`` index. W&B also gets the matrix as a table, the heatmap and the
forgetting plot as images, the summary, the resolved config, and a group and tags so the runs
of one ``compare`` sit together.
"""

from __future__ import annotations

import netrc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger

from continual.result import Result

LoggerName = Literal["csv", "tensorboard", "wandb"]


def make_loggers(
    names: Sequence[LoggerName],
    run_dir: Path,
    *,
    name: str,
    group: str | None = None,
    tags: Sequence[str] = (),
    config: dict | None = None,
) -> list[Logger]:
    """Loggers writing into ``run_dir``; W&B falls back to offline mode without credentials."""
    made: list[Logger] = []
    for kind in dict.fromkeys(names):  # each once, in order
        if kind == "csv":
            made.append(CSVLogger(run_dir, name="", version="logs"))
        elif kind == "tensorboard":
            made.append(TensorBoardLogger(run_dir, name="", version="tensorboard"))
        else:
            made.append(_wandb_logger(run_dir, name, group, tags, config))
    return made


def _wandb_logger(run_dir, name, group, tags, config) -> WandbLogger:
    offline = os.environ.get("WANDB_MODE") is None and not has_wandb_credentials()
    if offline:  # on stderr even in quiet mode: the user must know the run is not uploaded
        print(f"W&B: no credentials found, logging offline under {run_dir}/wandb "
              f"(upload later with `wandb sync {run_dir}/wandb/offline-run-*`)", file=sys.stderr)
    logger = WandbLogger(
        name=name, save_dir=str(run_dir), project=os.environ.get("WANDB_PROJECT", "continual"),
        group=group, tags=list(tags), config=config, offline=offline,
    )
    run = logger.experiment
    run.define_metric("task")
    for pattern in ("accuracy/*", "summary/*", "cost/*"):
        run.define_metric(pattern, step_metric="task")
    return logger


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


def log_task(loggers: Sequence[Logger], result: Result, i: int) -> None:
    """Row ``i`` of the matrix, the scores so far and the task's cost, against ``task = i``."""
    metrics = {f"accuracy/task_{j}": float(v) for j, v in enumerate(result.matrix[i])}
    metrics.update({f"summary/{k}": float(v) for k, v in result.summary.items()})
    metrics["cost/train_seconds"] = result.cost[i].train_seconds
    metrics["cost/train_samples"] = float(result.cost[i].train_samples)
    metrics["task"] = float(i)
    for logger in loggers:
        logger.log_metrics(metrics, step=i)


def log_final(loggers: Sequence[Logger], result: Result, plots: dict[str, Path]) -> None:
    """The summary to every logger; the matrix table and the plots to W&B; then close."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            n = result.matrix.shape[1]
            table = wandb.Table(columns=["after_task", *[f"task_{j}" for j in range(n)]],
                                data=[[i, *map(float, row)] for i, row in
                                      enumerate(result.matrix)])
            images = {key: wandb.Image(str(path)) for key, path in plots.items()}
            logger.experiment.log({"accuracy_matrix": table, **images})
            logger.experiment.summary.update(result.summary)
            logger.finalize("success")
            logger.experiment.finish()
        else:
            logger.log_hyperparams({f"final/{k}": v for k, v in result.summary.items()})
            logger.finalize("success")
