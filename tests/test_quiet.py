"""`--quiet true` means quiet: W&B's own banner and closing history are silenced too."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}  # CI sets it
    env.update(WANDB_MODE="offline", OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "continual.cli", "run", "--logger", "[wandb]",
            "--trainer.max_epochs", "1", "--data.init_args.n_tasks", "2",
            "--output", str(tmp_path), *extra]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300,
                          check=True)


@pytest.mark.slow  # two runs in processes of their own
def test_quiet_hides_wandbs_chatter_but_says_where_the_run_went(tmp_path):
    loud = _run(tmp_path, "--name", "loud")
    quiet = _run(tmp_path, "--name", "quiet", "--quiet", "true")
    chatter = ("Tracking run with wandb", "Run history", "Run summary", "wandb sync")
    assert all(c in loud.stderr for c in chatter)  # what quiet must take away
    assert quiet.stderr == "", quiet.stderr  # nothing at all, W&B's warnings included
    assert quiet.stdout.strip().endswith(f"results in {tmp_path / 'quiet'}")
    assert list((tmp_path / "quiet").glob("wandb/offline-run-*/run-*.wandb"))  # still logged
