"""Lazy data from a config: `ImageFolder(lazy: true)` and `LitData` through `continual run`
give the matrix of the in-memory image folder (issue #18: one config field chooses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests_helpers import colour_images

from continual.cli import main

NET = {"class_path": "torch.nn.Sequential", "init_args": {}}


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    """4 classes × 25 PNG images, 3×8×8."""
    return colour_images(tmp_path_factory.mktemp("images"), 4, 25, seed=0, noise=30)


def run_with(tmp: Path, name: str, dataset: dict) -> list[list[float]]:
    config = {
        "data": {"class_path": "continual.data.SplitClasses",
                 "init_args": {"n_tasks": 2, "dataset": dataset}},
        "model": {"net": {"class_path": "continual.nets.MLP",
                          "init_args": {"in_features": 192, "hidden": [32], "n_classes": 4}}},
        "strategy": {"class_path": "continual.strategies.ExperienceReplay",
                     "init_args": {"buffer_size": 20}},
        "trainer": {"max_epochs": 2}, "batch_size": 16,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(path), "--output", str(tmp), "--name", name,
                 "--quiet", "true", "--logger", "[]"]) == 0
    return json.loads((tmp / name / "results.json").read_text())["matrix"]


def test_a_lazy_image_folder_and_a_litdata_folder_from_configs_give_the_in_memory_matrix(
        image_root, tmp_path):
    folder = {"class_path": "continual.data.ImageFolder",
              "init_args": {"root": str(image_root), "seed": 0}}
    in_memory = run_with(tmp_path, "memory", folder)
    lazy = run_with(tmp_path, "lazy", {**folder, "init_args": {**folder["init_args"],
                                                                "lazy": True, "num_workers": 2}})
    assert lazy == in_memory
    pytest.importorskip("litdata")
    assert main(["data", "optimize", str(image_root), str(tmp_path / "chunks")]) == 0
    streamed = run_with(tmp_path, "litdata", {"class_path": "continual.data.LitData",
                                              "init_args": {"folder": str(tmp_path / "chunks"),
                                                            "seed": 0}})
    assert streamed == in_memory
