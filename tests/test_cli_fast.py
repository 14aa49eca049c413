"""`continual --version` and `continual --help` answer at once: neither loads Lightning or torch."""

from __future__ import annotations

import subprocess
import sys

import continual

PROBE = """
import sys
from continual.cli import main
main(["--version"]); main(["--help"])
print("loaded:", sorted(m for m in ("lightning", "torch") if m in sys.modules))
"""


def test_version_and_help_answer_without_loading_lightning():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert f"continual {continual.__version__}" in out
    assert "usage: continual COMMAND" in out and "--version" in out
    assert out.strip().endswith("loaded: []")


def test_the_package_still_exports_its_names():
    from continual import ConfigError, ContinualModule, Result, TaskCost, run

    assert issubclass(ConfigError, ValueError) and callable(run)
    assert {ContinualModule.__name__, Result.__name__, TaskCost.__name__} == {
        "ContinualModule", "Result", "TaskCost"}


def test_a_quiet_run_still_says_where_it_went(tmp_path, capsys):
    from continual.cli import main

    args = ["run", "--output", str(tmp_path), "--name", "mine", "--quiet", "true",
            "--trainer.max_epochs", "1", "--data.init_args.n_tasks", "2"]
    assert main(args) == 0 and main(args) == 0  # the second finds the name taken
    lines = capsys.readouterr().out.splitlines()
    assert lines.count(f"results in {tmp_path / 'mine'}") == 1
    assert lines.count(f"results in {tmp_path / 'mine-2'}") == 1
