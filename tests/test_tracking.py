"""W&B offline runs read back, CSV/TensorBoard numbers, plots and reports."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from continual.result import Result, TaskCost
from continual.tracking.plots import forgetting_figure, matrix_figure, plot_forgetting, plot_matrix
from continual.tracking.report import write_report
from continual.tracking.wandb_offline import read_offline_run

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
    tmp = tmp_path_factory.mktemp("wandb")
    argv = [sys.executable, "-m", "continual.cli", "compare", "--strategies",
            "FineTune,FullRetrain", "--logger", "[csv, tensorboard, wandb]", "--output",
            str(tmp / "runs"), "--name", "cmp", "--quiet", "true", *FAST]
    proc = subprocess.run(argv, capture_output=True, text=True, env=offline_env(tmp),
                          timeout=300, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return tmp / "runs" / "cmp", proc


def test_wandb_falls_back_to_offline_and_says_how_to_sync(wandb_compare):
    root, proc = wandb_compare
    notes = [line for line in proc.stderr.splitlines() if line.startswith("W&B:")]
    assert notes and "no credentials found, logging offline" in notes[0]
    assert "wandb sync" in notes[0]
    assert len(list(root.glob("*/wandb/offline-run-*"))) == 2


def test_wandb_offline_run_holds_task_metrics_summary_and_matrix(wandb_compare):
    root, _ = wandb_compare
    for strategy in ("FineTune", "FullRetrain"):
        run_dir = root / f"{strategy}-seed0"
        saved = json.loads((run_dir / "results.json").read_text())
        [offline] = run_dir.glob("wandb/offline-run-*")
        wb = read_offline_run(offline)
        assert wb.step_metrics["accuracy/*"] == "task"  # W&B draws one curve per task
        rows = [h for h in wb.history if "accuracy/task_0" in h]
        assert [h["task"] for h in rows] == [0, 1, 2]
        for i, h in enumerate(rows):
            got = [h[f"accuracy/task_{j}"] for j in range(3)]
            np.testing.assert_allclose(got, saved["matrix"][i], rtol=1e-6)
        assert wb.summary["average_accuracy"] == pytest.approx(
            saved["summary"]["average_accuracy"])
        assert wb.summary["accuracy_matrix/_type"] == "table-file"
        assert wb.summary["accuracy_matrix/nrows"] == 3
        assert wb.summary["accuracy_heatmap/_type"] == "image-file"
        [table] = offline.glob("files/media/table/accuracy_matrix_*.table.json")
        np.testing.assert_allclose([row[1:] for row in json.loads(table.read_text())["data"]],
                                   saved["matrix"], rtol=1e-6)
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


def partial_result(n_tasks=5, trained=3) -> Result:
    rng = np.random.default_rng(0)
    return Result(matrix=rng.uniform(size=(trained, n_tasks)), baseline=np.full(n_tasks, 0.1),
                  cost=[TaskCost(1.0, 100)] * trained, stream={}, strategy="FineTune()", seed=0)


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
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 6  # two plots per run, embedded
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
