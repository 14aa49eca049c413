"""A wheel holds what the package reads at run time: the shipped configs and stored help."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from continual.experiment import SHIPPED_CONFIGS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # builds a wheel (a few seconds, with the installed setuptools)
def test_the_wheel_ships_every_config_and_the_stored_help(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path)], check=True, timeout=300)
    [wheel] = tmp_path.glob("continual-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"continual/configs/{p.relative_to(SHIPPED_CONFIGS).as_posix()}"
               for p in SHIPPED_CONFIGS.rglob("*.yaml")}
    assert len(shipped) > 40 and shipped <= names
    assert {"continual/help/run.txt", "continual/help/compare.txt"} <= names


def test_shipped_configs_are_found_inside_the_package():
    assert SHIPPED_CONFIGS.parent.name == "continual"
    assert (SHIPPED_CONFIGS / "strategy" / "er.yaml").is_file()
