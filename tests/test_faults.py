"""Interrupted and diverging runs: nothing finished is lost, and `--resume` continues exactly."""

from __future__ import annotations

import json
import textwrap

import pytest

from continual.cli import main

USER_STRATEGIES = '''
import math
from pathlib import Path
from continual.strategies import FineTune


class InterruptOnce(FineTune):
    """Presses Ctrl-C in the middle of task 2 of the first run (a marker file remembers)."""
    def __init__(self, marker: str = "interrupted.marker"):
        self.marker = marker

    def loss(self, module, step, loss):
        if step.task == 2 and not Path(self.marker).exists():
            Path(self.marker).write_text("done")
            raise KeyboardInterrupt
        return loss


class NaNAt(FineTune):
    """Diverges at a given task."""
    def __init__(self, task: int = 2):
        self.task = task

    def loss(self, module, step, loss):
        return loss * math.nan if step.task == self.task else loss
'''

ARGS = ["--trainer.max_epochs", "2", "--data.init_args.n_tasks", "4", "--quiet", "true"]


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "faulty.py").write_text(textwrap.dedent(USER_STRATEGIES))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_ctrl_c_keeps_finished_tasks_and_resume_matches_an_unbroken_run(user_dir, capsys):
    args = ["--strategy", "faulty.InterruptOnce", *ARGS]
    assert main(["run", "--output", "out", "--name", "broken", *args]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted during task 3" in err and "--resume" in err
    partial = json.loads((user_dir / "out" / "broken" / "results.json").read_text())
    assert len(partial["matrix"]) == 2 and not partial["complete"]

    assert main(["run", "--resume", "out/broken"]) == 0
    resumed = json.loads((user_dir / "out" / "broken" / "results.json").read_text())
    assert main(["run", "--output", "out", "--name", "whole", *args]) == 0  # marker exists now
    whole = json.loads((user_dir / "out" / "whole" / "results.json").read_text())
    assert resumed["complete"] and resumed["matrix"] == whole["matrix"]


def test_nan_loss_stops_with_task_epoch_step_and_keeps_the_last_good_state(user_dir, capsys):
    code = main(["run", "--output", "out", "--name", "nan", "--strategy", "faulty.NaNAt",
                 "--strategy.task", "2", *ARGS])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "loss is nan at task 3, epoch 1, step 1" in err
    saved = json.loads((user_dir / "out" / "nan" / "results.json").read_text())
    assert len(saved["matrix"]) == 2  # tasks 0 and 1, trained before the divergence
    assert (user_dir / "out" / "nan" / "checkpoint.pt").is_file()


def test_resume_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "has no config.yaml" in capsys.readouterr().err
