"""W&B offline runs read back, CSV/TensorBoard numbers, plots and reports."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from wandb_records import read_offline_run

from continual.cli import main
from continual.result import Result, TaskCost
from continual.tracking.plots import forgetting_figure, matrix_figure, plot_forgetting, plot_matrix
from continual.tracking.report import write_report

FAST = ["--trainer.max_epochs", "1", "--data.init_args.n_tasks", "3"]


def offline_env(tmp_path: Path) -> dict[str, str]:
    """No credentials anywhere, no WANDB_MODE: the toolkit must fall back to offline by itself.

    WANDB_BASE_URL points at a closed local port, so any network attempt would fail, not hang.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), WANDB_BASE_URL="http://127.0.0.1:9", WANDB_SILENT="true")
    return env


@pytest.fixture(scope="module")
def wandb_compare(tmp_path_factory):
    """A compare logging to CSV, TensorBoard and W&B, in this process, without credentials."""
    tmp = tmp_path_factory.mktemp("wandb")
    argv = ["compare", "--strategies", "FineTune,FullRetrain", "--logger",
            "[csv, tensorboard, wandb]", "--output", str(tmp / "runs"), "--name", "cmp",
            "--quiet", "true", *FAST]
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        for key in os.environ:
            if key.startswith("WANDB_"):
                mp.delenv(key)
        for key, value in offline_env(tmp).items():
            mp.setenv(key, value)
        mp.chdir(tmp)
        code = main(argv)
    assert code == 0, err.getvalue()[-2000:]
    return tmp / "runs" / "cmp", err.getvalue()


def test_wandb_falls_back_to_offline_and_says_how_to_sync(wandb_compare):
    root, stderr = wandb_compare
    notes = [line for line in stderr.splitlines() if line.startswith("W&B:")]
    assert notes and "no credentials found, logging offline" in notes[0]
    assert "wandb sync" in notes[0]
    assert len(list(root.glob("*/wandb/offline-run-*"))) == 2


@pytest.mark.slow
def test_console_run_without_credentials_logs_wandb_offline(tmp_path):
    """The same fallback through the console entry point, in a process of its own."""
    argv = [sys.executable, "-m", "continual.cli", "run", "--logger", "[wandb]", "--output",
            "runs", "--name", "r", "--quiet", "true", *FAST]
    proc = subprocess.run(argv, capture_output=True, text=True, env=offline_env(tmp_path),
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "W&B: no credentials found, logging offline" in proc.stderr
    [offline] = (tmp_path / "runs" / "r").glob("wandb/offline-run-*")
    saved = json.loads((tmp_path / "runs" / "r" / "results.json").read_text())
    assert read_offline_run(offline).summary["average_accuracy"] == pytest.approx(
        saved["summary"]["average_accuracy"])


def test_wandb_offline_run_holds_task_metrics_summary_and_matrix(wandb_compare):
    root, _ = wandb_compare
    for strategy in ("FineTune", "FullRetrain"):
        run_dir = root / f"{strategy}-seed0"
        saved = json.loads((run_dir / "results.json").read_text())
        [offline] = run_dir.glob("wandb/offline-run-*")
        # What wandb writes as plain files offline: the logged tables and images.
        for key, matrix in (("accuracy_matrix", "matrix"),
                            ("accuracy_matrix_task_il", "task_il_matrix")):
            [table] = offline.glob(f"files/media/table/{key}_[0-9a-f]*.table.json")
            np.testing.assert_allclose([row[1:] for row in json.loads(table.read_text())["data"]],
                                       saved[matrix], rtol=1e-6)
        for image in ("accuracy_heatmap", "forgetting"):
            [png] = offline.glob(f"files/media/images/{image}_*.png")
            assert png.read_bytes()[:4] == b"\x89PNG"
        # The rest only in the run's record log.
        wb = read_offline_run(offline)
        assert wb.step_metrics["accuracy/*"] == "task"  # W&B draws one curve per task
        assert wb.step_metrics["accuracy_task_il/*"] == "task"
        rows = [h for h in wb.history if "accuracy/task_0" in h]
        assert [h["task"] for h in rows] == [0, 1, 2]
        for i, h in enumerate(rows):
            for key, matrix in (("accuracy", "matrix"), ("accuracy_task_il", "task_il_matrix")):
                got = [h[f"{key}/task_{j}"] for j in range(3)]
                np.testing.assert_allclose(got, saved[matrix][i], rtol=1e-6)
            cost = saved["cost"][i]
            assert h["cost/total_seconds"] == pytest.approx(
                cost["train_seconds"] + cost["strategy_seconds"] + cost["eval_seconds"])
        assert wb.summary["average_accuracy"] == pytest.approx(
            saved["summary"]["average_accuracy"])
        assert wb.summary["accuracy_matrix/_type"] == "table-file"
        assert wb.summary["accuracy_matrix/nrows"] == 3
        assert wb.summary["accuracy_heatmap/_type"] == "image-file"
        assert wb.group == "cmp" and wb.tags == [strategy, "seed0"]
        assert wb.config["strategy"]["class_path"].endswith(strategy)  # the resolved config


def test_csv_and_tensorboard_hold_the_numbers_of_results_json(wandb_compare):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = wandb_compare[0] / "FullRetrain-seed0"
    saved = json.loads((run_dir / "results.json").read_text())
    rows = [r for r in csv.DictReader((run_dir / "logs" / "metrics.csv").open())
            if r.get("accuracy/task_0")]
    assert len(rows) == 3
    for i, row in enumerate(rows):
        np.testing.assert_allclose([float(row[f"accuracy/task_{j}"]) for j in range(3)],
                                   saved["matrix"][i], rtol=1e-6)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    for j in range(3):
        scalars = events.Scalars(f"accuracy/task_{j}")
        assert [s.step for s in scalars] == [0, 1, 2]
        np.testing.assert_allclose([s.value for s in scalars],
                                   [row[j] for row in saved["matrix"]], rtol=1e-6)


def partial_result(n_tasks=5, trained=3, task_il=False) -> Result:
    rng = np.random.default_rng(0)
    return Result(matrix=rng.uniform(size=(trained, n_tasks)), baseline=np.full(n_tasks, 0.1),
                  cost=[TaskCost(1.0, 100)] * trained, stream={}, strategy="FineTune()", seed=0,
                  task_il_matrix=rng.uniform(size=(trained, n_tasks)) if task_il else None)


def test_heatmap_shows_the_task_incremental_matrix_beside_the_other():
    result = partial_result(4, 3, task_il=True)
    heatmap = matrix_figure(result)
    left, right = heatmap.axes[:2]
    assert "class-IL" in left.get_title() and "task-IL" in right.get_title()
    for ax, matrix in ((left, result.matrix), (right, result.task_il_matrix)):
        assert [t.get_text() for t in ax.texts] == [f"{100 * v:.0f}" for v in matrix.ravel()]


def test_cost_plot_places_each_strategy_at_its_whole_time():
    from continual.tracking.plots import cost_accuracy_figure

    ewc = partial_result(3, 3)
    ewc.cost = [TaskCost(train_seconds=2.0, strategy_seconds=5.0, eval_seconds=0.5)] * 3
    fig = cost_accuracy_figure({"EWC": [ewc]})
    ax = fig.axes[0]
    xs = sorted(float(x) for line in ax.get_lines() for x in line.get_xdata())
    assert xs[0] == pytest.approx(6.0) and xs[-1] == pytest.approx(22.5)  # training, total
    assert "training + strategy + evaluation" in ax.get_xlabel()


def test_cost_plot_names_strategies_at_the_same_point_apart():
    from continual.tracking.plots import cost_accuracy_figure

    same = {name: [partial_result(3, 3)] for name in ("FineTune", "FineTune-2", "ER", "EWC")}
    fig = cost_accuracy_figure(same)  # four strategies on one spot
    fig.canvas.draw()
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == list(same)
    assert not fig.axes[0].texts  # no names printed beside (and over) the points
    boxes = [t.get_window_extent() for t in legend.get_texts()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


@pytest.mark.parametrize("trained", [5, 3, 1])
def test_plots_are_pngs_showing_every_task(trained, tmp_path):
    result = partial_result(5, trained)
    heatmap = matrix_figure(result)
    assert len(heatmap.axes[0].texts) == 5 * trained  # one label per evaluated cell
    assert len(heatmap.axes[0].get_xticks()) == 5
    lines = forgetting_figure(result)
    assert len(lines.axes[0].get_legend().get_texts()) == 5
    for path in (plot_matrix(result, tmp_path / "m.png"),
                 plot_forgetting(result, tmp_path / "f.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = imread(path).shape
        assert 300 <= width <= 2000 and 300 <= height <= 2000


def test_report_lists_every_run_and_task(wandb_compare, tmp_path):
    root, _ = wandb_compare
    partial_dir = tmp_path / "stopped"
    partial_result(5, 2).save(partial_dir)
    md, page = write_report([root, partial_dir], tmp_path / "report")
    text = md.read_text()
    for name in ("FineTune-seed0", "FullRetrain-seed0", "stopped"):
        assert f"## {name}" in text
    assert "| after task | T0 | T1 | T2 |" in text  # the 3-task runs
    assert "| T4 |" in text and "stopped after task 1 of 5" in text
    assert text.count("task-incremental accuracy %") == 2  # both class-IL runs, not `stopped`
    header = next(line for line in text.splitlines() if line.startswith("| run |"))
    for column in ("task-IL acc %", "total s", "train s", "strategy s", "eval s"):
        assert f"| {column} |" in header
    html = page.read_text()
    # two plots per run, and the compare folder's cost plot, embedded
    assert html.count("data:image/png;base64,") == 7
    assert (tmp_path / "report" / "plots" / "stopped" / "forgetting.png").is_file()


def test_cost_accuracy_plot_of_a_compare(wandb_compare):
    png = wandb_compare[0] / "cost_accuracy.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_progress_bar_names_task_and_epoch(digits_data, capsys):
    from continual import ContinualModule, run
    from continual.data import split_classes
    from continual.nets import MLP

    stream = split_classes(digits_data, n_tasks=2)
    run(stream, ContinualModule(MLP()), trainer={"max_epochs": 2}, echo=None, progress=True)
    captured = capsys.readouterr()
    shown = captured.err + captured.out
    assert "task 1/2 · epoch 1/2" in shown and "task 2/2 · epoch 2/2" in shown
    assert "train/loss" in shown


MEMORY_LOGGER = '''
import json
from pathlib import Path

from lightning.pytorch.loggers import Logger


class MemoryLogger(Logger):
    """A user's own Lightning logger: keeps what it is sent, writes it to save_dir at the end."""

    def __init__(self, save_dir: str, label: str = "mine"):
        super().__init__()
        self.folder, self.label, self.rows, self.params = save_dir, label, [], {}

    @property
    def name(self):
        return self.label

    @property
    def version(self):
        return 0

    def log_metrics(self, metrics, step=None):
        self.rows.append({"step": step, **metrics})

    def log_hyperparams(self, params, *args, **kwargs):
        self.params.update(params)

    def finalize(self, status):
        out = {"rows": self.rows, "params": self.params, "status": status}
        (Path(self.folder) / f"{self.label}.json").write_text(json.dumps(out))
'''


def test_any_lightning_logger_by_class_path_next_to_an_alias(tmp_path, monkeypatch, capsys):
    (tmp_path / "memlog.py").write_text(MEMORY_LOGGER)
    monkeypatch.syspath_prepend(str(tmp_path))
    loggers = ("[csv, {class_path: memlog.MemoryLogger, init_args: {label: mem}}, "
               "{class_path: lightning.pytorch.loggers.CSVLogger, "
               "init_args: {version: by_path, flush_logs_every_n_steps: 1}}]")
    assert main(["run", "--logger", loggers, "--output", str(tmp_path), "--name", "r",
                 "--quiet", "true", *FAST]) == 0, capsys.readouterr().err
    run_dir = tmp_path / "r"
    saved = json.loads((run_dir / "results.json").read_text())
    mem = json.loads((run_dir / "mem.json").read_text())  # save_dir: the run folder
    tasks = [r for r in mem["rows"] if "task" in r]  # the rest: training curves
    assert [r["step"] for r in tasks] == [0, 1, 2] and mem["status"] == "success"
    for i, row in enumerate(tasks):
        np.testing.assert_allclose([row[f"accuracy/task_{j}"] for j in range(3)],
                                   saved["matrix"][i], rtol=1e-6)
    assert mem["params"]["final/average_accuracy"] == pytest.approx(
        saved["summary"]["average_accuracy"])
    # The alias and the class path of the same class: the same rows, each where it was told.
    by_alias, by_path = ([r for r in csv.DictReader((run_dir / v / "metrics.csv").open())
                          if r.get("accuracy/task_0")] for v in ("logs", "by_path"))
    assert by_alias == by_path and len(by_alias) == 3
    config = (run_dir / "config.yaml").read_text()  # what --resume will parse again
    assert "class_path: memlog.MemoryLogger" in config and "- csv" in config


def test_loggers_are_checked_before_any_is_built(tmp_path):
    from continual.errors import ConfigError
    from continual.tracking.loggers import check_loggers, make_loggers

    [entry] = check_loggers([{"class_path": "CSVLogger"}])
    assert entry.cls.__name__ == "CSVLogger" and entry.path == "lightning.pytorch.loggers.CSVLogger"
    assert len(check_loggers(["csv", "csv", "wandb"])) == 2  # each once
    with pytest.raises(ConfigError, match="logger: CSVLogger: init_args.flush_logs_every_n_steps"):
        make_loggers([{"class_path": "CSVLogger",
                       "init_args": {"flush_logs_every_n_steps": "often"}}], tmp_path, name="r")
    assert not any(tmp_path.iterdir())


def test_lightnings_own_tensorboard_check_also_names_the_extra(tmp_path, monkeypatch):
    """tensorboard importable but without its distribution: Lightning refuses at build time."""
    import lightning.fabric.loggers.tensorboard as fabric_tensorboard

    from continual.errors import ConfigError
    from continual.tracking.loggers import make_loggers

    monkeypatch.setattr(fabric_tensorboard, "_TENSORBOARD_AVAILABLE", False)
    monkeypatch.setattr(fabric_tensorboard, "_TENSORBOARDX_AVAILABLE", False)
    with pytest.raises(ConfigError, match=r'pip install "continual\[tensorboard\]"'):
        make_loggers(["csv", "tensorboard"], tmp_path, name="r")
    assert not any(tmp_path.iterdir())
