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
