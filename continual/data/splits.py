"""A labelled dataset already divided into train, validation and test parts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from continual.data.tensors import TensorData
from continual.errors import ConfigError


@dataclass
class DataSplits:
    """Train/val/test data of one dataset, before it is cut into tasks."""

    train: TensorData
    val: TensorData
    test: TensorData
    n_classes: int
    input_shape: tuple[int, ...]
    name: str


def stratified_splits(
    x: Tensor,
    y: Tensor,
    *,
    name: str,
    n_classes: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> DataSplits:
    """Divide ``(x, y)`` into train/val/test with every class in the same proportion in each.

    The split depends on ``seed`` only, so the same seed gives the same tasks on any machine.
    """
    train, val, test = split_indices(y, name=name, n_classes=n_classes,
                                     val_fraction=val_fraction, test_fraction=test_fraction,
                                     seed=seed)

    def part(i):
        return TensorData(x[i], y[i])

    return DataSplits(part(train), part(val), part(test), n_classes, tuple(x.shape[1:]), name)


def split_indices(y: Tensor, *, name: str, n_classes: int, val_fraction: float,
                  test_fraction: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`stratified_splits`'s train, validation and test indices into ``y``: from the
    labels alone, so data read lazily is split without reading an input."""
    for field, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{field}={value} is invalid; allowed: 0 <= {field} < 1")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training "
            "data; allowed: a sum below 1"
        )
    check_labels(y, n_classes, name)
    index = torch.arange(len(y)).numpy()
    labels = y.numpy()
    try:
        rest, test = _split(index, labels, test_fraction, seed)
        train, val = _split(rest, labels[rest], val_fraction / (1.0 - test_fraction), seed + 1)
    except ValueError as e:  # scikit-learn: too few samples of a class for the split asked
        raise ConfigError(f"{name} cannot be split stratified ({str(e).split('.')[0]}); allowed: "
                          "smaller val/test fractions or more samples per class") from None
    return tuple(torch.as_tensor(i, dtype=torch.long) for i in (train, val, test))


def check_labels(y: Tensor, n_classes: int, where: str) -> None:
    """Refuse labels outside ``0..n_classes-1`` in one line naming ``where`` (a file or a
    dataset): such a sample would otherwise be dropped silently, or fail deep in training."""
    if len(y) == 0:
        return
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= n_classes:
        bad = int(((y < 0) | (y >= n_classes)).sum())
        raise ConfigError(f"{where} holds {bad} label{'s' * (bad > 1)} outside 0..{n_classes - 1} "
                          f"(from {low} to {high}); allowed: integer labels 0..{n_classes - 1}")


def with_official_test(train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], *,
                       name: str, n_classes: int, val_fraction: float, seed: int) -> DataSplits:
    """A dataset that ships its own test set: validation is carved from ``train`` only."""
    check_labels(test[1], n_classes, f"{name} (test set)")
    data = stratified_splits(*train, name=name, n_classes=n_classes, val_fraction=val_fraction,
                             test_fraction=0.0, seed=seed)
    data.test = TensorData(*test)
    return data


def _split(index, labels, fraction: float, seed: int):
    if fraction == 0.0:
        return index, index[:0]
    return train_test_split(index, test_size=fraction, stratify=labels, random_state=seed)


def standardize(data: DataSplits, min_std: float = 0.1) -> DataSplits:
    """Scale every input feature to zero mean, unit variance using training statistics only.

    ``min_std`` keeps near-constant features (the digits' blank borders) from being blown up.
    MLPs trained with few steps per task converge far more reliably on standardized inputs.
    """
    x = data.train.x.float()
    mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True).clamp_min(min_std)

    def scale(part: TensorData) -> TensorData:
        return TensorData((part.x.float() - mean) / std, part.y, part.t)

    return DataSplits(scale(data.train), scale(data.val), scale(data.test), data.n_classes,
                      data.input_shape, data.name)
