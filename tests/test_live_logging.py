"""Training curves while tasks train: every logger, one global step axis across tasks."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch import Callback
from lightning.pytorch.loggers import Logger
from wandb_records import read_offline_run

from continual import ContinualModule, run
from continual.cli import main
from continual.data import split_classes
from continual.nets import MLP


class MemoryLogger(Logger):
    """Keeps every row it is sent, with its step."""

    def __init__(self):
        super().__init__()
        self.rows, self.finalized = [], 0

    name, version = "memory", 0

    def log_metrics(self, metrics, step=None):
        self.rows.append({"step": step, **metrics})

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def finalize(self, status):
        self.finalized += 1

    def curve(self) -> dict[int, float]:
        return {r["step"]: r["train/loss"] for r in self.rows if "train/loss" in r}


def task_ends(cost) -> list[int]:
    return np.cumsum([c["train_steps"] if isinstance(c, dict) else c.train_steps
                      for c in cost]).tolist()


def test_wandb_and_csv_hold_step_curves_across_tasks_and_the_task_rows(tmp_path, capsys):
    argv = ["run", "--logger", "[csv, wandb]", "--trainer.max_epochs", "3",
            "--trainer.log_every_n_steps", "5", "--data.init_args.n_tasks", "3",
            "--output", str(tmp_path), "--name", "r", "--quiet", "true"]
    assert main(argv) == 0, capsys.readouterr().err
    run_dir = tmp_path / "r"
    saved = json.loads((run_dir / "results.json").read_text())
    ends = task_ends(saved["cost"])  # the global step where each task ended
    assert ends[0] > 5 and saved["summary"]["train_steps"] == ends[-1]
    [offline] = run_dir.glob("wandb/offline-run-*")
    wb = read_offline_run(offline)
    assert wb.step_metrics["train/*"] == "trainer/global_step"
    assert wb.step_metrics["accuracy/*"] == "task"
    curve = [h for h in wb.history if "train/loss" in h]
    steps = [h["trainer/global_step"] for h in curve]
    # every 5th step of the run, and each task's last: one axis, task after task
    assert steps == sorted({*range(5, ends[-1] + 1, 5), *ends})
    for h in curve:
        assert np.isfinite(h["train/loss"]) and h["train/lr"] == pytest.approx(1e-3)
        assert h["train/samples_per_second"] > 0
    tasks = [h for h in wb.history if "accuracy/task_0" in h]
    assert [h["task"] for h in tasks] == [0, 1, 2]
    assert [h["trainer/global_step"] for h in tasks] == ends  # where each task ended
    val = [h for h in wb.history if "val/acc" in h]
    assert len(val) == 3 * 3  # after every epoch of every task
    # CSV: the same curve, on the same steps; the task rows as before (step: the task)
    rows = list(csv.DictReader((run_dir / "logs" / "metrics.csv").open()))
    csv_curve = {int(r["step"]): float(r["train/loss"]) for r in rows if r["train/loss"]}
    assert csv_curve == pytest.approx({h["trainer/global_step"]: h["train/loss"] for h in curve})
    assert [(r["step"], r["task"]) for r in rows if r["task"]] == [("0", "0.0"), ("1", "1.0"),
                                                                     ("2", "2.0")]


def _run(digits_data, loggers, run_dir=None, resume=False, callbacks=(), every=4):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=3)
    trainer = {"max_epochs": 3, "log_every_n_steps": every, "callbacks": list(callbacks)}
    return run(stream, ContinualModule(MLP()), trainer=trainer, seed=0, run_dir=run_dir,
               loggers=loggers, echo=None, resume=resume)


class Crash(Exception):
    pass


class CrashAt(Callback):
    """Fails at batch 2 of ``epoch`` of ``task``."""

    def __init__(self, task: int, epoch: int):
        self.task, self.epoch = task, epoch

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if (module.task_index, module.task_epoch, batch_idx) == (self.task, self.epoch, 2):
            raise Crash


@pytest.fixture(scope="module")
def unbroken(digits_data):
    logger = MemoryLogger()
    result = _run(digits_data, [logger])
    return result, logger


def test_loggers_are_finalized_once_and_every_task_has_its_curve(unbroken):
    result, logger = unbroken
    assert logger.finalized == 1  # not after every task's fit
    ends = task_ends(result.cost)
    steps = sorted(logger.curve())
    assert steps == sorted({*range(4, ends[-1] + 1, 4), *ends})
    starts = [0, *ends[:-1]]
    assert all(any(a < s <= b for s in steps) for a, b in zip(starts, ends))


@pytest.mark.parametrize("task, epoch", [(1, 0), (2, 1)], ids=["after-a-task", "mid-task"])
def test_a_resumed_run_continues_the_curve_where_it_stopped(digits_data, unbroken, tmp_path,
                                                              task, epoch):
    whole, whole_logger = unbroken
    before, after = MemoryLogger(), MemoryLogger()
    with pytest.raises(Crash):
        _run(digits_data, [before], tmp_path, callbacks=[CrashAt(task, epoch)])
    resumed = _run(digits_data, [after], tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.matrix, whole.matrix)
    assert [c.train_steps for c in resumed.cost] == [c.train_steps for c in whole.cost]
    first, second = before.curve(), after.curve()
    assert min(second) > max(s for s in first if s <= task_ends(whole.cost)[task - 1])
    for step in first.keys() & second.keys():  # steps trained twice (mid-task): same loss
        assert first[step] == pytest.approx(second[step])
    assert {**first, **second} == pytest.approx(whole_logger.curve())
    rows = [r for r in after.rows if "task" in r]
    assert [r["task"] for r in rows] == list(range(task, 3))


def test_the_interval_is_the_trainers_and_zero_turns_the_curves_off(digits_data):
    default, off = MemoryLogger(), MemoryLogger()
    result = _run(digits_data, [default], every=None)
    ends = task_ends(result.cost)
    assert sorted(default.curve()) == sorted({*range(50, ends[-1] + 1, 50), *ends})
    _run(digits_data, [off], every=0)
    assert not off.curve() and [r["task"] for r in off.rows if "task" in r] == [0, 1, 2]
