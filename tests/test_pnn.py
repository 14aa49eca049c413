"""Progressive Neural Networks: the lateral wiring against explicit maths, exact zero forgetting
in task-IL, frozen columns bit-identical, refusals, resume within a task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch import Callback
from tests_helpers import Crash
from torch import nn

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP, SmallCNN
from continual.strategies import PNN
from continual.strategies.pnn import mlp_layers, progressive_forward


def test_second_column_adds_the_first_columns_hidden_activations_through_its_laterals():
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    cols = [[(torch.randn(4, 3, generator=g), torch.randn(4, generator=g)),
             (torch.randn(2, 4, generator=g), torch.randn(2, generator=g))] for _ in range(2)]
    u = torch.randn(2, 4, generator=g)
    x = torch.randn(5, 3, generator=g)
    got = progressive_forward(mlp_layers(net), cols, [[None, None], [None, u]], x)
    (w0, b0), _ = cols[0]
    (v0, c0), (v1, c1) = cols[1]
    h_first = torch.relu(x @ w0.T + b0)  # column 0's input to its second layer
    h_second = torch.relu(x @ v0.T + c0)
    torch.testing.assert_close(got, h_second @ v1.T + c1 + h_first @ u.T)


def flat(columns) -> list[torch.Tensor]:
    return [t.clone() for column in columns for layer in column for t in layer if t is not None]


class Columns(Callback):
    """The frozen columns as each task's fit starts."""

    def __init__(self) -> None:
        self.seen: list[list] = []

    def on_train_start(self, trainer, module):
        self.seen.append(flat(module.strategy.state_dict()["columns"]))


class CrashIn(Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.task_index == 1 and module.task_epoch == 1 and batch_idx == 1:
            raise Crash


def task_il_run(digits_data, callbacks=(), n_tasks=5, **kwargs):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=n_tasks, scenario="task")
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2),
                        nn.Linear(32, 10))
    module = ContinualModule(net, PNN())
    kwargs.setdefault("echo", None)
    result = run(stream, module, batch_size=32,
                 trainer={"accelerator": "cpu", "max_epochs": 2, "callbacks": list(callbacks)},
                 **kwargs)
    return result, module


def test_zero_forgetting_and_frozen_columns_in_task_incremental(digits_data):
    columns = Columns()
    result, module = task_il_run(digits_data, [columns])
    matrix = result.matrix
    for j in range(5):  # every later row gives task j the accuracy it had when learnt
        assert (matrix[j:, j] == matrix[j, j]).all(), matrix
    assert np.mean(np.diag(matrix)) >= 0.9, matrix
    final = flat(module.strategy.state_dict()["columns"])
    assert [len(s) for s in columns.seen] == [0, 4, 8, 12, 16] and len(final) == 20
    for before in columns.seen:  # (weight, bias) of 2 layers per frozen column
        assert all(torch.equal(a, b) for a, b in zip(before, final, strict=False))


def test_class_incremental_streams_and_conv_nets_are_refused(digits_data):
    with pytest.raises(ConfigError, match="scenario='class'"):
        run(split_classes(digits_data, n_tasks=2, scenario="class"),
            ContinualModule(MLP(), PNN()), echo=None, trainer={"max_epochs": 1})
    stream = split_classes(digits_data, n_tasks=2, scenario="task")
    with pytest.raises(ConfigError, match="holding \\['Conv2d'\\]"):
        PNN().on_task_start(ContinualModule(SmallCNN()), stream, 0)


def test_resumed_run_matches_the_uninterrupted_one(digits_data, tmp_path):
    whole, done = task_il_run(digits_data, n_tasks=3, run_dir=tmp_path / "whole", seed=5)
    with pytest.raises(Crash):
        task_il_run(digits_data, [CrashIn()], n_tasks=3, run_dir=tmp_path / "broken", seed=5)
    lines: list[str] = []
    resumed, again = task_il_run(digits_data, n_tasks=3, run_dir=tmp_path / "broken", seed=5,
                                 resume=True, echo=lines.append)
    assert "resuming task 2/3 after epoch 1 (mid-task checkpoint)" in lines
    np.testing.assert_array_equal(resumed.matrix, whole.matrix)
    state, expected = again.strategy.state_dict(), done.strategy.state_dict()
    assert all(torch.equal(a, b) for a, b in zip(flat(state["columns"]),
                                                 flat(expected["columns"]), strict=True))
    laterals = [u for column in state["laterals"] for u in column if u is not None]
    assert len(laterals) == 1 + 1  # one into the output layer of each later column
    assert all(torch.equal(a, b) for a, b in zip(laterals, [
        u for column in expected["laterals"] for u in column if u is not None], strict=True))
