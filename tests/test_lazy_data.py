"""Lazy data (inputs read batch by batch from disk) trains exactly as its in-memory twin."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from tests_helpers import CountingRows, Crash, CrashAt, colour_images
from torch import nn

from continual import ConfigError, ContinualModule, run
from continual.buffers import ClassBalanced, ReplayBuffer, Reservoir
from continual.cli import main
from continual.data import image_folder, split_classes
from continual.data.lazy import LazyData
from continual.data.lazy_sources import lazy_dataset, lazy_image_folder
from continual.data.litdata_format import litdata_splits, read_litdata, write_litdata
from continual.data.tensors import TensorData
from continual.strategies import EWC, ExperienceReplay, FineTune, GDumb

STRATEGIES = {"FineTune": FineTune, "ER": lambda: ExperienceReplay(40, seed=1),
              "EWC": lambda: EWC(lam=10.0, n_samples=50)}


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    """10 classes × 30 PNG images, 3×8×8."""
    return colour_images(tmp_path_factory.mktemp("images"), 10, 30, seed=0)


def train(data, name: str, **kwargs):
    seed_everything(0, verbose=False)
    net = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.ReLU(), nn.Dropout(0.2),
                        nn.Linear(32, 10))
    module = ContinualModule(net, STRATEGIES[name](), partial(torch.optim.Adam, lr=0.02))
    stream = split_classes(data, n_tasks=5)
    return run(stream, module, trainer={"max_epochs": 3}, batch_size=8, seed=3, echo=None,
               **kwargs), module


@pytest.fixture(scope="module")
def in_memory(image_root):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = train(image_folder(image_root, seed=2), name)[0].matrix
        return cache[name]
    return get


@pytest.mark.parametrize("name, workers", [("FineTune", 0), ("ER", 2), ("EWC", 0)])
def test_a_lazy_image_folder_gives_the_in_memory_matrix(name, workers, image_root, in_memory):
    data = lazy_image_folder(image_root, seed=2, num_workers=workers)
    assert isinstance(data.train, LazyData) and data.input_shape == (3, 8, 8)
    result, _ = train(data, name)
    np.testing.assert_array_equal(result.matrix, in_memory(name))
    assert np.diag(result.matrix).max() == 1.0, result.matrix  # the inputs carry the classes


@pytest.mark.parametrize("name, workers", [("FineTune", 2), ("ER", 0)])
def test_a_litdata_folder_gives_the_in_memory_matrix(name, workers, image_root, in_memory,
                                                     tmp_path):
    folder = write_litdata(image_root, tmp_path / "chunks", chunk_bytes="8KB")
    assert len(list(folder.glob("*.bin"))) > 1  # several chunks: rows cross chunk borders
    data = litdata_splits(folder, seed=2, num_workers=workers)
    np.testing.assert_array_equal(train(data, name)[0].matrix, in_memory(name))


def test_tensors_written_to_litdata_read_back_with_labels_and_tasks(tmp_path):
    x = torch.randint(0, 256, (30, 1, 4, 4), dtype=torch.uint8)
    data = TensorData(x, torch.arange(30) % 3, torch.arange(30) // 10)
    back = read_litdata(write_litdata(data, tmp_path / "out"))
    assert torch.equal(back.y, data.y) and torch.equal(back.t, data.t)
    assert torch.equal(back.materialize().x, x) and back.normalization is not None


def test_splitting_and_sampling_read_labels_only(digits_data):
    x, y = digits_data.train.x, digits_data.train.y
    source = CountingRows(x, y)
    data = lazy_dataset(source, val_fraction=0.1, test_fraction=0.2, seed=0)
    split_classes(data, n_tasks=5)
    assert source.reads <= 2  # the input shape, probed once
    drawn = data.train.sample(25, seed=4)
    expected = TensorData(x, y).subset(data.train.index).sample(25, seed=4)
    assert torch.equal(drawn.x, expected.x) and torch.equal(drawn.y, expected.y)


def test_lazy_data_keeps_tensor_data_surface():
    a = LazyData(CountingRows(torch.arange(6.0)[:, None], torch.arange(6)), torch.arange(6))
    b = LazyData(CountingRows(-torch.arange(4.0)[:, None], torch.arange(4)), torch.arange(4))
    joined = TensorData.concat([a.subset(torch.tensor([5, 1])), b.with_task(2)])
    assert isinstance(joined, LazyData) and len(joined) == 6 and joined.classes == [0, 1, 2, 3, 5]
    assert joined.materialize().x.flatten().tolist() == [5, 1, 0, -1, -2, -3]
    assert joined.t.tolist() == [0, 0, 2, 2, 2, 2]
    with pytest.raises(ConfigError, match="lazy data holds no inputs in memory"):
        _ = joined.x


def test_a_lazy_task_resumes_mid_task_bit_for_bit(image_root, tmp_path):
    data = lazy_image_folder(image_root, seed=2, num_workers=2)
    whole, module = train(data, "ER", run_dir=tmp_path / "whole")
    with pytest.raises(Crash):  # in epoch 1 of task 1, after epoch 0's checkpoint
        _crash(data, tmp_path / "cut")
    resumed, again = train(data, "ER", run_dir=tmp_path / "cut", resume=True)
    np.testing.assert_array_equal(resumed.matrix, whole.matrix)
    assert all(torch.equal(p, q) for p, q in zip(again.net.state_dict().values(),
                                                 module.net.state_dict().values()))


def _crash(data, run_dir: Path) -> None:
    seed_everything(0, verbose=False)
    net = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.ReLU(), nn.Dropout(0.2),
                        nn.Linear(32, 10))
    module = ContinualModule(net, STRATEGIES["ER"](), partial(torch.optim.Adam, lr=0.02))
    run(split_classes(data, n_tasks=5), module,
        trainer={"max_epochs": 3, "callbacks": [CrashAt()]}, batch_size=8, seed=3, echo=None,
        run_dir=run_dir)


def test_without_litdata_the_error_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "litdata", None)
    with pytest.raises(ConfigError) as error:
        write_litdata(TensorData(torch.zeros(2, 1), torch.zeros(2)), tmp_path)
    assert str(error.value) == ('write_litdata needs litdata, which is not installed; allowed: '
                                'pip install "continual[stream]"')


@pytest.mark.parametrize("policy", [Reservoir(), ClassBalanced()])
def test_a_buffer_fills_from_lazy_data_as_from_tensors_reading_only_what_it_keeps(policy):
    x = torch.randint(0, 256, (300, 3, 4, 4), dtype=torch.uint8)
    y = torch.arange(300) % 7
    source = CountingRows(x, y)
    eager, lazy = ReplayBuffer(50, policy, seed=3), ReplayBuffer(50, policy, seed=3)
    for rows in torch.arange(300).split(120):  # three "tasks", the memory full after the first
        eager.add_data(TensorData(x[rows], y[rows]))
        lazy.add_data(LazyData(source, y[rows], index=rows))
    a, b = eager.state_dict(), lazy.state_dict()
    assert all(torch.equal(a["store"][k], b["store"][k]) for k in a["store"])
    assert a["n_seen"] == b["n_seen"] == 300 and torch.equal(a["generator"], b["generator"])
    assert source.reads <= 1 + 3 * 50  # the first row's shape, then at most what it kept
    assert lazy.nbytes == 50 * (48 + 8 + 8 + 8 + 1)  # uint8 inputs, labels, tasks, keys, valid


def test_gdumb_on_lazy_data_gives_the_in_memory_matrix(image_root):
    def gdumb_run(data):
        seed_everything(0, verbose=False)
        net = nn.Sequential(nn.Flatten(), nn.Linear(192, 10))
        return run(split_classes(data, n_tasks=5), ContinualModule(net, GDumb(30)),
                   trainer={"max_epochs": 2}, batch_size=8, echo=None).matrix

    np.testing.assert_array_equal(gdumb_run(lazy_image_folder(image_root, seed=2)),
                                  gdumb_run(image_folder(image_root, seed=2)))


def test_continual_data_optimize_writes_a_folder_that_streams(image_root, tmp_path, capsys):
    assert main(["data", "optimize", str(image_root), str(tmp_path / "out"), "--size", "4"]) == 0
    assert "wrote 300 samples" in capsys.readouterr().out
    data = read_litdata(tmp_path / "out")
    assert data.materialize().x.shape == (300, 3, 4, 4)
    assert torch.equal(data.y, torch.arange(300) // 30)  # folder c0 first, its files in order
    assert main(["data", "optimize", str(image_root)]) == 2
    assert "allowed: continual data optimize SOURCE OUTPUT" in capsys.readouterr().err
