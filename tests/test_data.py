"""Streams built from digits: invariants of the class split and the permutations."""

import dataclasses

import pytest
import torch
from torch.utils.data import DataLoader

from continual.data import TensorData, pass_batch, permuted, split_classes
from continual.errors import ConfigError


def test_digits_split_is_stratified_and_seeded(digits_data):
    from continual.data import digits

    assert len(digits_data.train) + len(digits_data.val) + len(digits_data.test) == 1797
    assert digits_data.input_shape == (1, 8, 8)
    assert digits_data.train.x.mean().abs() < 1e-5  # standardized on the training split
    assert float(digits(normalize=False).train.x.max()) <= 1.0
    counts = torch.bincount(digits_data.test.y, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # 20 % of ~180 per class
    again = digits()
    assert torch.equal(again.train.x, digits_data.train.x)
    other = digits(seed=1)
    assert not torch.equal(other.train.y, digits_data.train.y)


def test_split_classes_partitions_classes_exactly(digits_data):
    stream = split_classes(digits_data, n_tasks=5)
    assert [t.classes for t in stream] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    for task in stream:
        for part in (task.train, task.val, task.test):
            assert set(part.y.tolist()) == set(task.classes)
            assert (part.t == task.id).all()
    assert sum(len(t.train) for t in stream) == len(digits_data.train)


def test_class_order_and_uneven_tasks(digits_data):
    stream = split_classes(digits_data, class_order=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
                           classes_per_task=[4, 3, 2, 1])
    assert [t.classes for t in stream] == [[9, 8, 7, 6], [5, 4, 3], [2, 1], [0]]
    assert len(split_classes(digits_data, n_tasks=3)[0].classes) == 4  # 4, 3, 3


def test_task_scenario_mask(digits_data):
    mask = split_classes(digits_data, n_tasks=5, scenario="task").class_mask()
    assert mask.shape == (5, 10)
    assert mask.sum(1).tolist() == [2] * 5
    assert mask[2, 4] and mask[2, 5] and not mask[2, 6]


@pytest.mark.parametrize("kwargs, message", [
    ({"n_tasks": 11}, "n_tasks=11 is invalid for 10 classes; allowed: 1..10"),
    ({"n_tasks": 0}, "n_tasks=0 is invalid"),
    ({"n_tasks": 2, "class_order": [0, 1, 1]}, "repeats classes [1]"),
    ({"n_tasks": 2, "class_order": [0, 12]}, "unknown classes [12]; allowed: 0..9"),
    ({"classes_per_task": [5, 0, 5]}, "classes_per_task=[5, 0, 5] is invalid"),
    ({"n_tasks": 2, "scenario": "domain"}, "scenario='domain' is invalid"),
])
def test_bad_split_arguments_are_named(digits_data, kwargs, message):
    with pytest.raises(ConfigError) as err:
        split_classes(digits_data, **kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_task_without_training_samples_is_rejected(digits_data):
    data = digits_data
    no_sevens = TensorData(data.train.x[data.train.y != 7], data.train.y[data.train.y != 7])
    broken = type(data)(no_sevens, data.val, data.test, 10, data.input_shape, "digits")
    with pytest.raises(ConfigError, match=r"task 7 \(classes \[7\]\) has no training samples"):
        split_classes(broken, n_tasks=10)


def test_permutations_are_bijections_shared_by_train_and_test(digits_data):
    stream = permuted(digits_data, n_tasks=3, seed=0)
    assert stream.scenario == "domain"
    assert torch.equal(stream[0].train.x, digits_data.train.x)  # task 0 is the original
    for task in stream:
        perm = task.permutation
        assert torch.equal(torch.sort(perm).values, torch.arange(64))
        for part, original in ((task.train, digits_data.train), (task.test, digits_data.test)):
            expected = original.x.reshape(len(original), -1)[:, perm].reshape(original.x.shape)
            assert torch.equal(part.x, expected)
            assert torch.equal(part.y, original.y)
    assert not torch.equal(stream[1].permutation, stream[2].permutation)
    assert torch.equal(permuted(digits_data, 3, seed=0)[2].test.x, stream[2].test.x)


def test_permuted_stream_of_data_without_validation_split(digits_data):
    no_val = dataclasses.replace(digits_data, val=digits_data.val.subset(torch.arange(0)))
    stream = permuted(no_val, n_tasks=2, seed=0)
    assert [len(task.val) for task in stream] == [0, 0]
    assert stream[1].val.x.shape == (0, *digits_data.input_shape)
    assert torch.equal(stream[1].train.x, permuted(digits_data, 2, seed=0)[1].train.x)


def test_dataloader_batches_by_slicing_and_keeps_every_sample(digits_data):
    data = digits_data.train
    loader = DataLoader(data, batch_size=64, shuffle=True, collate_fn=pass_batch,
                        generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    x, y, t = batches[0]
    assert x.shape == (64, 1, 8, 8) and y.shape == (64,) and t.shape == (64,)
    assert sum(len(b[1]) for b in batches) == len(data)
    seen = torch.cat([b[1] for b in batches]).sort().values
    assert torch.equal(seen, data.y.sort().values)
