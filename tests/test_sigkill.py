"""A run killed with SIGKILL resumes to the matrix of an unbroken run (per-task checkpoints)."""

from __future__ import annotations

import csv
import json
import textwrap

import pytest
from tests_helpers import STRATEGY_MEMBERS, cli_run, kill_point_config, kill_when

KILL_POINT = '''
import time
from pathlib import Path
from continual.strategies import Strategy


class PauseAt(Strategy):
    """Signals, then waits, at a chosen task and phase: the moment for the test to SIGKILL."""
    def __init__(self, task: int = 2, mid_task: bool = True):
        self.task, self.mid_task = task, mid_task

    def _pause(self):
        marker = Path("pause.marker")
        if not marker.exists():
            marker.write_text("paused")
            time.sleep(600)

    def on_task_start(self, module, stream, index):
        if index == self.task and not self.mid_task:
            self._pause()

    def loss(self, module, step, loss):
        if step.task == self.task and self.mid_task:
            self._pause()
        return loss
'''

@pytest.mark.parametrize("name, mid_task", [("finetune", False), ("finetune", True),
                                            ("ewc", True), ("er", True), ("derpp", True)])
def test_sigkill_then_resume_gives_the_unbroken_matrix(name, mid_task, tmp_path):
    (tmp_path / "killpoint.py").write_text(textwrap.dedent(KILL_POINT))
    where = f"{{task: 2, mid_task: {str(mid_task).lower()}}}"
    pause = f"{{class_path: killpoint.PauseAt, init_args: {where}}}"
    (tmp_path / "exp.yaml").write_text(kill_point_config(STRATEGY_MEMBERS[name], pause))
    victim = cli_run("--config", "exp.yaml", "--logger", "[csv]", "--name", "killed",
                     cwd=tmp_path)
    kill_when(tmp_path / "pause.marker", victim, "task 2")
    partial = json.loads((tmp_path / "out" / "killed" / "results.json").read_text())
    assert len(partial["matrix"]) == 2  # tasks 0 and 1 survived the kill

    resume = cli_run("--resume", "out/killed", cwd=tmp_path)
    assert resume.wait(timeout=300) == 0, resume.communicate()[1][-2000:]
    whole = cli_run("--config", "exp.yaml", "--logger", "[csv]", "--name", "whole",
                    cwd=tmp_path)  # the marker exists now
    assert whole.wait(timeout=300) == 0, whole.communicate()[1][-2000:]
    resumed = json.loads((tmp_path / "out" / "killed" / "results.json").read_text())
    unbroken = json.loads((tmp_path / "out" / "whole" / "results.json").read_text())
    assert resumed["complete"] and resumed["matrix"] == unbroken["matrix"]
    # logs/metrics.csv: one row per task, as the unbroken run's, none lost to the kill
    rows = {run: [r["task"] for r in csv.DictReader((tmp_path / "out" / run / "logs" /
                                                     "metrics.csv").open()) if r.get("task")]
            for run in ("killed", "whole")}
    assert rows["killed"] == rows["whole"] == [f"{i}.0" for i in range(len(unbroken["matrix"]))]
