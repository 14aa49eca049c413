"""Transforms: preprocessing once on every split, augmentation per training batch only."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from torch import nn
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from continual import ContinualModule, run
from continual.config import instantiate, run_parser
from continual.data import TensorData, apply_transform, augment, pass_batch, split_classes
from continual.data.transforms import BatchRandomCrop, BatchRandomFlip
from continual.nets import MLP
from continual.strategies import FullRetrain


def batches(data: TensorData, batch_size=64):
    return list(DataLoader(data, batch_size=batch_size, collate_fn=pass_batch))


def test_train_transform_is_declared_on_training_data_only_and_batched(digits_data):
    stream = split_classes(digits_data, n_tasks=2)
    clean = [t.test.x.clone() for t in stream]
    flipped = augment(stream, v2.RandomHorizontalFlip(p=0.5))
    assert stream[0].train.transform is None  # the original stream is left as it was
    assert isinstance(flipped[0].train.transform, BatchRandomFlip)  # converted to a batched flip
    x, y, _ = batches(flipped[0].train)[0]  # the loader gathers; the training step augments
    assert torch.equal(x, flipped[0].train.x[:64]) and torch.equal(y, flipped[0].train.y[:64])
    for task, before in zip(flipped, clean):
        assert task.test.transform is None and task.val.transform is None
        assert torch.equal(task.test.x, before)
        assert torch.equal(batches(task.test)[0][0], before[:64])  # test batches stay clean
    assert torch.equal(flipped[0].train.x, stream[0].train.x)  # stored inputs never change


class Counting(nn.Module):
    """An identity augmentation that counts the samples it sees."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def forward(self, x):
        self.seen += 1
        return x


def run_tiny(stream, **kwargs):
    seed_everything(0, verbose=False)
    module = ContinualModule(MLP(hidden=[32]), FullRetrain(from_scratch=False))
    return run(stream, module, trainer={"accelerator": "cpu", "max_epochs": 1}, batch_size=32,
               echo=None, **kwargs), module


def test_augmentation_reaches_every_training_sample_and_no_evaluation(digits_data):
    stream = split_classes(digits_data, n_tasks=2)
    plain, _ = run_tiny(stream)
    counting = Counting()
    augmented, module = run_tiny(augment(stream, counting))  # FullRetrain concatenates tasks
    assert counting.seen == module.samples_seen == len(stream[0].train) * 2 + len(stream[1].train)
    assert (augmented.matrix == plain.matrix).all()  # identity: same training, same evaluation


def test_transform_is_applied_once_to_every_split(digits_data):
    normalize = v2.Normalize(mean=[0.5], std=[2.0])
    data = apply_transform(digits_data, [normalize, v2.Resize(4, antialias=True)])
    assert data.input_shape == (1, 4, 4)
    for before, after in ((digits_data.train, data.train), (digits_data.test, data.test)):
        expected = v2.functional.resize((before.x - 0.5) / 2.0, [4, 4], antialias=True)
        assert torch.allclose(after.x, expected, atol=1e-6)
        assert torch.equal(after.y, before.y)


def test_concatenating_differently_augmented_data_is_refused(digits_data):
    a = TensorData(digits_data.train.x, digits_data.train.y, transform=v2.RandomHorizontalFlip())
    assert TensorData.concat([a, a.subset(slice(0, 5))]).transform is a.transform
    with pytest.raises(ValueError, match="different training transforms"):
        TensorData.concat([a, digits_data.train])


def test_config_sets_both_transforms():
    parser = run_parser()
    cfg = parser.parse_args(["--data", """{
        class_path: continual.data.SplitClasses,
        init_args: {n_tasks: 2,
          dataset: {class_path: continual.data.Digits, init_args: {transform: {
            class_path: torchvision.transforms.v2.Normalize,
            init_args: {mean: [1.0], std: [1.0]}}}},
          train_transform: [{class_path: torchvision.transforms.v2.RandomHorizontalFlip},
                            {class_path: torchvision.transforms.v2.RandomCrop,
                             init_args: {size: 8, padding: 1}}]}}"""])
    stream = instantiate(parser, cfg).data.build()
    steps = stream[0].train.transform.steps  # torchvision's, made batched
    assert [type(s) for s in steps] == [BatchRandomFlip, BatchRandomCrop]
    assert steps[1].size == (8, 8) and steps[1].padding == (1, 1, 1, 1)
    assert stream[1].test.transform is None
    from continual.data import digits

    assert torch.allclose(stream[0].test.x.mean(), split_classes(digits(), 2)[0].test.x.mean() - 1)
