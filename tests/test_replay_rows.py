"""A replay memory of lazy data keeps rows, not copies, and replays what copies would."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from tests_helpers import CountingRows, colour_images
from torch import nn

from continual import ConfigError, ContinualModule, buffers, run
from continual.buffers import ClassBalanced, ReplayBuffer, Reservoir
from continual.data import image_folder, split_classes
from continual.data.lazy import LazyData
from continual.data.lazy_sources import lazy_image_folder
from continual.strategies import (
    AGEM,
    GEM,
    XDER,
    Compose,
    DERpp,
    ExperienceReplay,
    FullRetrain,
)


@pytest.mark.parametrize("policy", [Reservoir(), ClassBalanced()])
def test_a_memory_of_rows_keeps_and_replays_what_a_memory_of_copies_would(policy):
    x = torch.randint(0, 256, (300, 3, 4, 4), dtype=torch.uint8)
    y, t = torch.arange(300) % 7, torch.zeros(300, dtype=torch.long)
    source = CountingRows(x, y)
    copies = ReplayBuffer(50, policy, seed=3, storage="copies")
    rows = ReplayBuffer(50, policy, seed=3, storage="rows")
    rows.attach(0, LazyData(source, y))
    for batch in torch.arange(300).split(32):
        copies.add(x[batch], y[batch], t[batch])
        rows.add(None, y[batch], t[batch], rows=batch, task=0)
    assert rows.holds_rows and not copies.holds_rows
    assert source.reads == 0  # choosing what to keep reads no input
    drawn, expected = rows.sample(20), copies.sample(20)
    assert all(torch.equal(a, b) for a, b in zip(drawn, expected))
    assert source.reads == 20  # only the drawn items are read
    assert rows.nbytes == 50 * (8 + 8 + 8 + 8 + 8 + 1)  # task, row, label, task id, key, valid
    assert copies.nbytes == 50 * (48 + 8 + 8 + 8 + 1)

    resumed = ReplayBuffer(50, policy, seed=3, storage="rows")
    resumed.load_state_dict(rows.state_dict())
    with pytest.raises(ConfigError, match="holds rows of task 0 but not its data"):
        resumed.data()
    resumed.attach(0, LazyData(source, y))
    assert torch.equal(resumed.data().x, copies.data().x)


def test_a_memory_of_rows_refuses_inputs_without_rows():
    memory = ReplayBuffer(5, storage="rows")
    with pytest.raises(ConfigError, match="offered inputs without their rows"):
        memory.add(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.zeros(2))
    with pytest.raises(ConfigError, match="storage='disk' is invalid; allowed: 'auto'"):
        ReplayBuffer(5, storage="disk")


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    return colour_images(tmp_path_factory.mktemp("images"), 10, 30, seed=0)


METHODS = {"ER": partial(ExperienceReplay, 40, seed=1),
           "DER++": partial(DERpp, buffer_size=40, seed=1),
           "A-GEM": partial(AGEM, 40, replay_batch_size=16),
           "X-DER": partial(XDER, buffer_size=40, seed=1),
           "GEM": partial(GEM, 40, seed=1)}


def train(data, method: str, **kwargs):
    seed_everything(0, verbose=False)
    net = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.ReLU(), nn.Linear(32, 10))
    module = ContinualModule(net, METHODS[method](**kwargs), partial(torch.optim.Adam, lr=0.02))
    result = run(split_classes(data, n_tasks=5), module, trainer={"max_epochs": 2},
                 batch_size=8, seed=3, echo=None)
    return result, module.strategy.buffer


@pytest.mark.parametrize("method", list(METHODS))
def test_replay_of_lazy_rows_gives_the_in_memory_matrix_in_a_fraction_of_the_bytes(
        method, image_root):
    lazy, lazy_memory = train(lazy_image_folder(image_root, seed=2), method, storage="rows")
    eager, eager_memory = train(image_folder(image_root, seed=2), method)
    assert lazy_memory.holds_rows and not eager_memory.holds_rows
    np.testing.assert_array_equal(lazy.matrix, eager.matrix)
    lazy_bytes, eager_bytes = lazy.cost[-1].memory_bytes, eager.cost[-1].memory_bytes
    assert lazy_bytes == lazy_memory.nbytes and eager_bytes == eager_memory.nbytes
    assert lazy_bytes < eager_bytes / 3  # 192 input bytes an item are not kept
    copied, copied_memory = train(lazy_image_folder(image_root, seed=2), method)
    assert not copied_memory.holds_rows  # "auto": 40 items of 192 bytes are copied
    np.testing.assert_array_equal(copied.matrix, eager.matrix)


def test_an_automatic_memory_keeps_rows_once_copies_would_exceed_the_budget(monkeypatch):
    x = torch.randint(0, 256, (64, 3, 4, 4), dtype=torch.uint8)
    y = torch.arange(64) % 4
    data = LazyData(CountingRows(x, y), y)
    monkeypatch.setattr(buffers, "COPIES_BUDGET", 10 * 48)  # ten items' inputs
    for capacity, rows in ((10, False), (11, True)):
        per_step, per_task = ReplayBuffer(capacity), ReplayBuffer(capacity)
        assert per_step.takes_rows(x[:8]) is rows
        per_task.attach(0, data)
        per_task.add_data(data, task=0)
        assert per_task.holds_rows is rows and len(per_task) == capacity


def test_a_memory_beside_training_on_other_data_keeps_copies(image_root):
    """Full retraining reads all tasks so far, not the task's own data: its batches carry no
    rows, and an automatic memory beside it copies (a memory of rows says it cannot)."""
    def both(data, storage="auto"):
        seed_everything(0, verbose=False)
        net = nn.Sequential(nn.Flatten(), nn.Linear(192, 10))
        strategy = Compose([FullRetrain(), ExperienceReplay(20, seed=1, storage=storage)])
        return run(split_classes(data, n_tasks=3), ContinualModule(net, strategy),
                   trainer={"max_epochs": 1}, batch_size=8, seed=3, echo=None)

    lazy = both(lazy_image_folder(image_root, seed=2))
    np.testing.assert_array_equal(lazy.matrix, both(image_folder(image_root, seed=2)).matrix)
    with pytest.raises(ConfigError, match="offered inputs without their rows"):
        both(lazy_image_folder(image_root, seed=2), storage="rows")
