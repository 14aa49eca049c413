"""The user's own per-task tensors as a stream, and the same tensors through Avalanche 0.6's
``benchmark_from_datasets``: bit-identical matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from torch.utils.data import TensorDataset

from continual import ConfigError, ContinualModule, run
from continual.data import from_task_tensors, split_classes
from continual.nets import MLP
from continual.strategies import ExperienceReplay


def own_tasks(digits_data):
    stream = split_classes(digits_data, n_tasks=3)
    return [(t.train.x, t.train.y, t.test.x, t.test.y) for t in stream]


def matrix(stream):
    seed_everything(0, verbose=False)
    module = ContinualModule(MLP(), ExperienceReplay(buffer_size=40))
    return run(stream, module, trainer={"max_epochs": 2}, echo=None).matrix


def test_own_tasks_become_a_stream_as_given(digits_data):
    tasks = own_tasks(digits_data)
    stream = from_task_tensors(tasks)
    assert len(stream) == 3 and stream.scenario == "class" and stream.n_classes == 10
    for task, (x, y, xt, yt) in zip(stream, tasks):
        assert torch.equal(task.train.x, x) and torch.equal(task.test.x, xt)
        assert torch.equal(task.test.y, yt)
        assert task.classes == sorted(y.unique().tolist()) and len(task.val) == 0
    result = matrix(stream)
    assert result[0, 0] > 0.8 and result[-1].mean() > 0.4  # learns, and replay remembers


def test_avalanche_benchmark_from_datasets_gives_the_same_matrix(digits_data):
    scenarios = pytest.importorskip("avalanche.benchmarks.scenarios.dataset_scenario")
    utils = pytest.importorskip("avalanche.benchmarks.utils")
    from continual.data import from_avalanche

    tasks = own_tasks(digits_data)

    def dataset(x, y):
        data = TensorDataset(x, y)
        data.targets = y
        return utils.as_classification_dataset(data)

    benchmark = scenarios.benchmark_from_datasets(
        train=[dataset(x, y) for x, y, _, _ in tasks],
        test=[dataset(xt, yt) for _, _, xt, yt in tasks])
    converted = from_avalanche(benchmark, scenario="class")
    np.testing.assert_array_equal(matrix(converted), matrix(from_task_tensors(tasks)))


@pytest.mark.parametrize(("tasks", "message"), [
    ([], "tasks=\\[\\]"),
    ([(torch.zeros(3, 2), torch.zeros(2).long(), torch.zeros(1, 2), torch.zeros(1).long())],
     "task 1 train: 3 inputs"),
    ([(torch.zeros(2, 2), torch.tensor([0, -1]), torch.zeros(1, 2), torch.zeros(1).long())],
     "task 1 train: labels must be integers >= 0"),
], ids=["none", "count", "negative"])
def test_bad_task_tensors_are_one_line_errors(tasks, message):
    with pytest.raises(ConfigError, match=message):
        from_task_tensors(tasks)
