"""``continual retrain --batch`` takes image folders and litdata folders as well as files:
the same samples give the same steps as the ``.npz`` batch (issue #20)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from continual.cli import main

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # a dozen pipeline runs: about a minute

POLICY = textwrap.dedent("""\
    model:
      net:
        class_path: continual.nets.MLP
        init_args: {in_features: 64, hidden: [32], n_classes: 10}
    trainer: {max_epochs: 3}
    initial_chunks: 2
    policies:
      - name: every-2
        trigger: {class_path: continual.retraining.EveryK, init_args: {k: 2}}
    """)


def digit_batches(n: int = 4, size: int = 60) -> list[tuple[np.ndarray, np.ndarray]]:
    bunch = load_digits()
    pixels = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)  # [N, 8, 8] grey levels
    return [(pixels[i * size:(i + 1) * size], bunch.target[i * size:(i + 1) * size])
            for i in range(n)]


def as_npz(path: Path, pixels: np.ndarray, labels: np.ndarray) -> Path:
    np.savez(path, x=(pixels[:, None].astype(np.float32) / 255.0), y=labels)
    return path


def as_image_folder(root: Path, pixels: np.ndarray, labels: np.ndarray) -> Path:
    for i, (image, label) in enumerate(zip(pixels, labels)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(root / str(label) / f"{i:04d}.png")
    return root


def retrain(tmp: Path, deploy: str, batch: Path) -> int:
    return main(["retrain", "--config", str(tmp / "policy.yaml"), "--deployment",
                 str(tmp / deploy), "--quiet", "true", "--batch", str(batch)])


def steps(tmp: Path, deploy: str) -> list[tuple]:
    state = json.loads((tmp / deploy / "state.json").read_text())
    return [(s["step"], s["accuracy"], s["retrained"], s["deployed"]) for s in state["steps"]]


def order_as_read(pixels: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The samples in the order a folder is read: by class folder, then file name."""
    order = sorted(range(len(labels)), key=lambda i: (str(labels[i]), f"{i:04d}"))
    return pixels[order], labels[order]


def test_image_folder_batches_give_the_steps_of_the_same_npz_batches(tmp_path):
    (tmp_path / "policy.yaml").write_text(POLICY)
    for i, (pixels, labels) in enumerate(digit_batches()):
        folder = as_image_folder(tmp_path / "folders" / f"batch-{i}", pixels, labels)
        npz = as_npz(tmp_path / f"batch-{i}.npz", *order_as_read(pixels, labels))
        assert retrain(tmp_path, "from-folders", folder) == 0
        assert retrain(tmp_path, "from-files", npz) == 0
    assert steps(tmp_path, "from-folders") == steps(tmp_path, "from-files")
    assert [s[2] for s in steps(tmp_path, "from-folders")] == [False, True, False, True]

    moved = tmp_path / "renamed"  # a folder's identity is its files, not its name
    (tmp_path / "folders" / "batch-3").rename(moved)
    assert retrain(tmp_path, "from-folders", moved) == 0
    assert len(steps(tmp_path, "from-folders")) == 4


def test_litdata_folder_batches_give_the_steps_of_the_same_npz_batches(tmp_path):
    pytest.importorskip("litdata")
    from continual.data import TensorData, write_litdata

    (tmp_path / "policy.yaml").write_text(POLICY)
    for i, (pixels, labels) in enumerate(digit_batches(3)):
        folder = tmp_path / f"lit-{i}"
        write_litdata(TensorData(torch.from_numpy(pixels[:, None]), torch.from_numpy(labels)),
                      folder)
        assert retrain(tmp_path, "from-litdata", folder) == 0
        assert retrain(tmp_path, "from-files", as_npz(tmp_path / f"b{i}.npz", pixels,
                                                      labels)) == 0
    assert steps(tmp_path, "from-litdata") == steps(tmp_path, "from-files")


def test_an_image_batch_outside_index_named_class_folders_is_one_line(tmp_path, capsys):
    (tmp_path / "policy.yaml").write_text(POLICY)
    pixels, labels = digit_batches(1)[0]
    folder = as_image_folder(tmp_path / "batch", pixels, labels)
    (folder / "3").rename(folder / "three")
    assert retrain(tmp_path, "d", folder) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "named by an index" in err
    assert not (tmp_path / "d" / "state.json").exists()
