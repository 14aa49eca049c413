"""What ``continual retrain`` sends to the configured loggers (``--logger``: CSV, W&B, any).

The rows are the ones ``simulate`` logs (each batch's ``prequential/accuracy``, ``retrained``,
``deployed`` against ``step``), the monitor's rows (against ``monitor_row``) and the gate
decisions (``decision/*`` rows, and in W&B a ``decisions`` table). The deployment's state is
their source: a row is sent only after the commit that holds it, so a step killed before its
commit and run again sends its rows once; a kill between the commit and the sending loses
them from the logger (never from the state or the registry), which a W&B run cannot take back
anyway. W&B keeps one run per deployment folder, resumed by every call (its id in
``DEPLOY/.wandb_id``); the CSV file (``DEPLOY/logs/metrics.csv``), which Lightning's writer
starts afresh in each process, is written again from the whole state by every call.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

from continual.retraining.monitor import logged_metrics
from continual.tracking.loggers import LoggerSpec, check_loggers, make_loggers

KINDS = ("steps", "monitor", "decisions")  # the state's lists that hold logged rows


def marks(state: dict[str, Any]) -> dict[str, int]:
    """How many rows of each kind ``state`` holds (what a later commit adds comes after)."""
    return {k: len(state[k]) for k in KINDS}


class StepLogs:
    """The loggers of one ``continual retrain`` call, started only when a row is sent.

    Args:
        specs: the ``logger`` list of the config (aliases or class paths).
        root: the deployment folder (the loggers' folder; its W&B run id is kept there).
        name, config, quiet: the W&B run's name and config, and whether W&B stays silent.
    """

    def __init__(self, specs: Sequence[LoggerSpec], root: Path, *, name: str,
                 config: dict | None = None, quiet: bool = False) -> None:
        check_loggers(specs)  # an unknown logger or a missing extra: one line, before any step
        csv = {i for i, s in enumerate(specs) if issubclass(check_loggers([s])[0].cls, CSVLogger)}
        self.csv = [s for i, s in enumerate(specs) if i in csv]
        self.live = [s for i, s in enumerate(specs) if i not in csv]
        self.context = {"run_dir": root, "name": name, "group": root.name,
                        "tags": ["retrain"], "config": config, "quiet": quiet}
        self._loggers: list[Logger] | None = None
        self.sent_decisions = False

    def committed(self, state: dict[str, Any], before: dict[str, int]) -> None:
        """Send the rows a commit added to ``state`` since ``before`` (CSV waits for close)."""
        rows = _rows(state, before)
        if not rows or not self.live:
            return
        for logger in self._started():
            for step, metrics in rows:
                logger.log_metrics(metrics, step=step)
        self.sent_decisions |= len(state["decisions"]) > before["decisions"]

    def close(self, state: dict[str, Any]) -> None:
        """The W&B decisions table (when new ones came) and the end of the run; the CSV file
        written again from every committed row."""
        for logger in self._loggers or []:
            if isinstance(logger, WandbLogger) and self.sent_decisions:
                logger.experiment.log({"decisions": _table(state["decisions"])})
            logger.finalize("success")
            if isinstance(logger, WandbLogger):
                logger.experiment.finish()
        if self.csv:
            for logger in make_loggers(self.csv, self.context["run_dir"],
                                       name=self.context["name"]):
                with warnings.catch_warnings():  # "... will be deleted": it is written again
                    warnings.filterwarnings("ignore", message="Experiment logs directory")
                    logger.experiment  # noqa: B018 (the writer starts here)
                for step, metrics in _rows(state, dict.fromkeys(KINDS, 0)):
                    logger.log_metrics(metrics, step=step)
                logger.finalize("success")

    def _started(self) -> list[Logger]:
        if self._loggers is None:
            c = self.context
            self._loggers = make_loggers(self.live, c["run_dir"], name=c["name"],
                                         group=c["group"], tags=c["tags"], config=c["config"],
                                         quiet=c["quiet"])
            for logger in self._loggers:
                if isinstance(logger, WandbLogger):
                    run = logger.experiment
                    for axis, pattern in (("step", "prequential/*"), ("step", "decision/*"),
                                          ("monitor_row", "monitor/*")):
                        run.define_metric(axis)
                        run.define_metric(pattern, step_metric=axis)
        return self._loggers


def _rows(state: dict[str, Any], before: dict[str, int]) -> list[tuple[int, dict[str, float]]]:
    """``(step, metrics)`` for each row of ``state`` after ``before``, in commit order."""
    rows = []
    for row in state["monitor"][before["monitor"]:]:
        rows.append((row["step"], {**logged_metrics(row), "monitor_row": float(row["index"])}))
    for d in state["decisions"][before["decisions"]:]:
        numbers = {f"decision/{k}": float(d[k]) for k in ("champion_accuracy",
                   "challenger_accuracy", "negative_flip_rate", "n_holdout")
                   if d[k] is not None and math.isfinite(d[k])}
        rows.append((d["step"], {**numbers, "decision/deploy": float(d["deploy"]),
                                 "decision/shadow": float(d.get("stage") == "shadow"),
                                 "step": float(d["step"])}))
    for s in state["steps"][before["steps"]:]:
        metrics = {"prequential/retrained": float(s["retrained"]),
                   "prequential/deployed": float(s["deployed"]), "step": float(s["step"])}
        if s["accuracy"] is not None:
            metrics["prequential/accuracy"] = s["accuracy"]
        rows.append((s["step"], metrics))
    return rows


def _table(decisions: list[dict[str, Any]]) -> Any:
    import wandb

    columns = list(decisions[0]) if decisions else ["step"]
    return wandb.Table(columns=columns, data=[[d.get(c) for c in columns] for d in decisions])

