"""An Avalanche benchmark built with Avalanche's own API runs like the native stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from torch.utils.data import TensorDataset

from continual import ContinualModule, run
from continual.data import TensorData, split_classes
from continual.data.splits import DataSplits
from continual.errors import ConfigError
from continual.nets import MLP

avalanche = pytest.importorskip("avalanche.benchmarks")


def by_class(part: TensorData) -> TensorData:
    """Stable sort by label: the order Avalanche gives each experience's samples."""
    return part.subset(torch.argsort(part.y, stable=True))


def labelled(part: TensorData) -> TensorDataset:
    dataset = TensorDataset(part.x, part.y)
    dataset.targets = part.y  # Avalanche reads the labels from here
    return dataset


@pytest.mark.parametrize("scenario", ["class", "task"])
def test_avalanche_benchmark_converts_to_the_same_stream_and_matrix(digits_data, scenario):
    from continual.data.avalanche import from_avalanche

    train, test = by_class(digits_data.train), by_class(digits_data.test)
    benchmark = avalanche.nc_benchmark(
        train_dataset=labelled(train), test_dataset=labelled(test), n_experiences=5,
        task_labels=scenario == "task", fixed_class_order=list(range(10)))
    converted = from_avalanche(benchmark)
    assert converted.scenario == scenario
    native = split_classes(DataSplits(train, digits_data.val, test, 10, (1, 8, 8), "digits"),
                           n_tasks=5, scenario=scenario)
    for a, b in zip(converted, native):
        assert a.classes == b.classes
        for part_a, part_b in ((a.train, b.train), (a.test, b.test)):
            assert torch.equal(part_a.x, part_b.x) and torch.equal(part_a.y, part_b.y)
            assert torch.equal(part_a.t, part_b.t)

    def matrix(stream):
        seed_everything(0, verbose=False)
        return run(stream, ContinualModule(MLP()), trainer={"max_epochs": 2}, echo=None).matrix

    np.testing.assert_array_equal(matrix(converted), matrix(native))


def test_unknown_benchmark_path_is_a_clear_error():
    from continual.data import Avalanche

    with pytest.raises(ConfigError, match="cannot be imported"):
        Avalanche("avalanche.benchmarks.classic.NoSuchBenchmark").build()
