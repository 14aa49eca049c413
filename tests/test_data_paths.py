"""Shipped configs name data by a relative path that resolves from any folder."""

from __future__ import annotations

import json
from pathlib import Path

from tests_helpers import fake_mnist

from continual.cli import main
from continual.data.paths import find_data
from continual.experiment import SHIPPED_CONFIGS


def test_a_relative_path_is_looked_up_in_the_working_directory_then_under_continual_data(
        tmp_path, monkeypatch):
    here, shared = tmp_path / "here", tmp_path / "shared"
    (shared / "mnist-t10k").mkdir(parents=True)
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("CONTINUAL_DATA", str(shared))
    assert find_data("mnist-t10k") == shared / "mnist-t10k"
    (here / "mnist-t10k").mkdir()  # the working directory comes first
    assert find_data("mnist-t10k").resolve() == here / "mnist-t10k"
    assert find_data("absent") == Path("absent")  # as given: the reader says it is missing
    assert find_data(shared) == shared


def test_the_shipped_split_mnist_config_runs_from_another_folder(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "data" / "mnist-t10k", n=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("CONTINUAL_DATA", str(tmp_path / "data"))
    assert main(["run", "--config", str(SHIPPED_CONFIGS / "data" / "split_mnist.yaml"),
                 "--trainer.max_epochs", "1", "--data.init_args.n_tasks", "2",
                 "--output", "runs", "--name", "r", "--quiet", "true"]) == 0
    saved = json.loads((elsewhere / "runs" / "r" / "results.json").read_text())
    assert len(saved["matrix"]) == 2  # read the 300 images the test wrote, not the real ones
    config = (elsewhere / "runs" / "r" / "config.yaml").read_text()
    assert "root: mnist-t10k" in config


def test_a_missing_relative_folder_names_where_it_was_looked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONTINUAL_DATA", str(tmp_path))
    assert main(["run", "--config", str(SHIPPED_CONFIGS / "data" / "split_mnist.yaml"),
                 "--data.init_args.dataset.init_args.root", "nowhere", "--quiet", "true"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "root='nowhere'" in err and "CONTINUAL_DATA" in err
