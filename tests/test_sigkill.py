"""A run killed with SIGKILL resumes to the matrix of an unbroken run (per-task checkpoints)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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

    def loss(self, module, batch, logits, loss):
        if module.task_index == self.task and self.mid_task:
            self._pause()
        return loss
'''

MEMBERS = {
    "finetune": "{class_path: continual.strategies.FineTune}",
    "ewc": "{class_path: continual.strategies.EWC, init_args: {lam: 30.0, n_samples: 64}}",
    "er": "{class_path: continual.strategies.ExperienceReplay, init_args: {buffer_size: 50}}",
    "derpp": "{class_path: continual.strategies.DERpp, init_args: {buffer_size: 50}}",
}


def config(member: str, mid_task: bool) -> str:
    pause = f"{{task: 2, mid_task: {str(mid_task).lower()}}}"
    return textwrap.dedent(f"""
        strategy:
          class_path: continual.strategies.Compose
          init_args:
            strategies:
              - {member}
              - {{class_path: killpoint.PauseAt, init_args: {pause}}}
        trainer: {{max_epochs: 2}}
        data: {{class_path: continual.data.SplitClasses, init_args: {{n_tasks: 4}}}}
        quiet: true
        logger: []
        output: out
    """)


def cli(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.Popen([sys.executable, "-m", "continual.cli", "run", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


@pytest.mark.parametrize("name, mid_task", [("finetune", False), ("finetune", True),
                                            ("ewc", True), ("er", True), ("derpp", True)])
def test_sigkill_then_resume_gives_the_unbroken_matrix(name, mid_task, tmp_path):
    (tmp_path / "killpoint.py").write_text(textwrap.dedent(KILL_POINT))
    (tmp_path / "exp.yaml").write_text(config(MEMBERS[name], mid_task))
    victim = cli("--config", "exp.yaml", "--name", "killed", cwd=tmp_path)
    deadline = time.monotonic() + 240
    while not (tmp_path / "pause.marker").exists():
        assert victim.poll() is None, victim.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the run never reached task 2"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    partial = json.loads((tmp_path / "out" / "killed" / "results.json").read_text())
    assert len(partial["matrix"]) == 2  # tasks 0 and 1 survived the kill

    resume = cli("--resume", "out/killed", cwd=tmp_path)
    assert resume.wait(timeout=300) == 0, resume.communicate()[1].decode()[-2000:]
    whole = cli("--config", "exp.yaml", "--name", "whole", cwd=tmp_path)  # marker exists now
    assert whole.wait(timeout=300) == 0, whole.communicate()[1].decode()[-2000:]
    resumed = json.loads((tmp_path / "out" / "killed" / "results.json").read_text())
    unbroken = json.loads((tmp_path / "out" / "whole" / "results.json").read_text())
    assert resumed["complete"] and resumed["matrix"] == unbroken["matrix"]
