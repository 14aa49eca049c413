"""Any map-style ``torch.utils.data.Dataset`` of ``(input, label)`` pairs, as tensors.

The dataset is read once, sample by sample, into :class:`TensorData`; from then on batches
are slices, so a slow ``__getitem__`` (decoding images, say) is paid once, not every epoch.
PIL images are held as uint8 and scaled to [0, 1] batch by batch as they train
(:func:`~continual.data.transforms.with_pixels`), a quarter of the memory of float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from continual.data.splits import DataSplits, standardize, stratified_splits, with_official_test
from continual.data.tensors import Transform
from continual.data.transforms import apply_transform, with_pixels
from continual.errors import ConfigError


def from_dataset(
    train: Dataset,
    test: Dataset | None = None,
    *,
    name: str | None = None,
    n_classes: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    normalize: bool = False,
    transform: Transform | Sequence[Transform] | None = None,
    num_workers: int = 0,
) -> DataSplits:
    """Materialise ``train`` (and ``test``, else a stratified share of ``train``) as splits.

    Args:
        train: yields ``(input, label)``; inputs are tensors, numpy arrays, PIL images
            (held as uint8, seen by the network in [0, 1]) or numbers, all of one shape;
            labels are integers.
        test: the dataset's own test set; validation is then carved from ``train`` only.
        n_classes: defaults to ``len(train.classes)`` when present, else the largest label + 1.
        transform: applied once to every split's inputs (see :mod:`continual.data.transforms`).
        num_workers: processes reading samples (helps when ``__getitem__`` decodes files).
    """
    name = name or type(train).__name__
    x, y, pil = materialise(train, f"{name} train", num_workers)
    largest = int(y.max())
    if test is not None:
        x_test, y_test, pil_test = materialise(test, f"{name} test", num_workers)
        if pil != pil_test:  # one of them PIL images: both as floats
            x, x_test, pil = _floats(x, pil), _floats(x_test, pil_test), False
        if x_test.shape[1:] != x.shape[1:]:
            raise ConfigError(f"{name}: test inputs have shape {tuple(x_test.shape[1:])} but "
                              f"train inputs {tuple(x.shape[1:])}; allowed: one shape")
        largest = max(largest, int(y_test.max()))
    n = n_classes or len(getattr(train, "classes", None) or []) or largest + 1
    if largest >= n:
        raise ConfigError(f"{name}: labels go up to {largest} but n_classes={n}; "
                          f"allowed: labels 0..{n - 1}")
    if test is None:
        data = stratified_splits(x, y, name=name, n_classes=n, val_fraction=val_fraction,
                                 test_fraction=test_fraction, seed=seed)
    else:
        data = with_official_test((x, y), (x_test, y_test), name=name, n_classes=n,
                                  val_fraction=val_fraction, seed=seed)
    if pil:
        return apply_transform(with_pixels(data, standardize=normalize), transform)
    return apply_transform(standardize(data) if normalize else data, transform)


def materialise(dataset: Dataset, name: str, num_workers: int = 0
                ) -> tuple[Tensor, Tensor, bool]:
    """Inputs ``[N, *shape]`` and integer labels ``[N]`` read from every sample of ``dataset``,
    and whether the inputs were PIL images (then held as uint8 ``[N, C, H, W]``).

    Labels come from ``dataset.targets`` when it has them and no ``target_transform`` (so
    they are checked before any input is decoded), else from the samples.
    """
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"{name}: {type(dataset).__name__} has no length; allowed: a "
                          "map-style Dataset with __len__ and __getitem__") from None
    if n == 0:
        raise ConfigError(f"{name}: the dataset is empty")
    targets = getattr(dataset, "targets", None)
    use_targets = targets is not None and getattr(dataset, "target_transform", None) is None
    y = _labels(targets, name) if use_targets else None
    if y is not None and len(y) != n:
        y = None  # targets that do not match the samples one to one: read the samples
    xs, ys, pil = [], [], False
    loader = DataLoader(dataset, batch_size=None, num_workers=num_workers, collate_fn=_as_is)
    for i, sample in enumerate(loader):
        if not isinstance(sample, (tuple, list)) or len(sample) < 2:
            raise ConfigError(f"{name}: sample {i} is a {type(sample).__name__}; allowed: "
                              "(input, label) pairs")
        x = _as_tensor(sample[0], i, name)
        pil = pil or (hasattr(sample[0], "getbands") and x.dtype == torch.uint8)
        if xs and x.shape != xs[0].shape:
            raise ConfigError(f"{name}: sample {i} has input shape {tuple(x.shape)} but sample 0 "
                              f"has {tuple(xs[0].shape)}; allowed: one shape (resize first)")
        xs.append(x)
        if y is None:
            ys.append(_label(sample[1], i, name))
    x = torch.stack(xs)
    return x, (y if y is not None else torch.tensor(ys, dtype=torch.long)), pil


def _floats(x: Tensor, pil: bool) -> Tensor:
    """PIL-read uint8 inputs as float32 in [0, 1] (the same floats batches would decode to)."""
    return x.float().div_(255.0) if pil else x


def _as_is(sample):
    """Samples exactly as the dataset returns them (the loader would turn arrays to tensors)."""
    return sample


def _as_tensor(value, i: int, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "getbands"):  # a PIL image: [C, H, W], as torchvision reads it
        from torchvision.transforms.v2 import functional as F

        x = F.pil_to_tensor(value)  # 8-bit modes stay uint8; others in [0, 1] as before
        return x if x.dtype == torch.uint8 else x.float().div_(255.0)
    try:
        return torch.as_tensor(np.asarray(value) if not isinstance(value, np.ndarray) else value)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"{name}: the input of sample {i} is a {type(value).__name__}, which "
                          "cannot be made a tensor; allowed: tensors, numpy arrays, PIL images, "
                          "numbers") from None


def _label(value, i: int, name: str) -> int:
    if isinstance(value, Tensor):
        value = value.item() if value.numel() == 1 else value
    elif isinstance(value, (np.ndarray, np.generic)) and value.size == 1:
        value = value.item()
    if isinstance(value, Integral) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise ConfigError(f"{name}: the label of sample {i} is {value!r}; allowed: integer class "
                      "labels 0..n_classes-1")


def _labels(targets, name: str) -> Tensor | None:
    """``targets`` as a label tensor; None when they are no array (then samples are read)."""
    try:
        y = torch.as_tensor(np.asarray(targets))
    except (TypeError, ValueError, RuntimeError):
        return None
    if y.ndim != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ConfigError(f"{name}: targets have dtype {y.dtype} and shape {tuple(y.shape)}; "
                          "allowed: one integer class label per sample")
    if len(y) and int(y.min()) < 0:
        raise ConfigError(f"{name}: targets include {int(y.min())}; allowed: labels "
                          "0..n_classes-1")
    return y.long()
