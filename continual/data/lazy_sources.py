"""Datasets as :class:`~continual.data.lazy.LazyData` splits: labels up front, inputs on disk.

The lazy twins of :func:`~continual.data.image_folder.image_folder` and
:func:`~continual.data.datasets.from_dataset`: the same samples, labels and stratified split
(the same seed gives the same rows), but nothing is decoded until a batch needs it, so the
data may be far larger than memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from continual.data.datasets import _label, _labels
from continual.data.image_folder import class_folders, image_files, read_image
from continual.data.input_maps import Standardize
from continual.data.lazy import LazyData, first_inputs
from continual.data.splits import DataSplits, check_labels, split_indices
from continual.data.tensors import PixelNormalization, Transform
from continual.data.transforms import apply_transform
from continual.errors import ConfigError


class ImageFiles(Dataset):
    """Image ``i`` of ``paths``, decoded when asked for, as uint8 ``[C, H, W]``."""

    def __init__(self, paths: Sequence[Path], size: tuple[int, int] | None,
                 grayscale: bool) -> None:
        self.paths, self.size, self.grayscale = list(paths), size, grayscale

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        return read_image(self.paths[i], self.size, self.grayscale)


def lazy_image_folder(root: str | Path, test_root: str | Path | None = None, *,
                      size: int | Sequence[int] | None = None, grayscale: bool = False,
                      val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                      num_workers: int = 0, normalize: bool = False,
                      transform: Transform | Sequence[Transform] | None = None) -> DataSplits:
    """:func:`~continual.data.image_folder.image_folder` read lazily: files are listed (the
    labels are their folders), split, and decoded batch by batch by ``num_workers`` processes.

    Pixels are scaled to [0, 1] as they train; without ``size`` every image must have the
    first one's size (a batch of another size fails when it is read). ``transform``
    (deterministic preprocessing) runs on each batch as it is read, as
    :func:`~continual.data.transforms.apply_transform` describes; ``normalize`` standardises
    each pixel with the training split's statistics (:func:`standardized`).
    """
    root = Path(root)
    classes = class_folders(root, "root")
    hw = None if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    if hw is not None and (len(hw) != 2 or min(hw) < 1):
        raise ConfigError(f"size={size!r} is invalid; allowed: a positive int or [height, width]")
    paths, y = image_files(root, classes, classes)
    test = None
    if test_root is not None:
        test_classes = class_folders(Path(test_root), "test_root")
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise ConfigError(f"test_root={str(test_root)!r} has classes {unknown} that root "
                              f"lacks; allowed: a subset of {classes}")
        test_paths, test_y = image_files(Path(test_root), test_classes, classes)
        test = _lazy(ImageFiles(test_paths, hw, grayscale), test_y, True, num_workers)
    whole = _lazy(ImageFiles(paths, hw, grayscale), y, True, num_workers)
    data = lazy_splits(whole, test, name=root.name, n_classes=len(classes),
                       val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    return apply_transform(standardized(data) if normalize else data, transform)


def lazy_dataset(train: Dataset, test: Dataset | None = None, *,
                 labels: Tensor | Sequence[int] | None = None,
                 test_labels: Tensor | Sequence[int] | None = None, name: str | None = None,
                 n_classes: int | None = None, pixels: bool = False, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, seed: int = 0, num_workers: int = 0,
                 normalize: bool = False,
                 transform: Transform | Sequence[Transform] | None = None) -> DataSplits:
    """Any map-style dataset of ``(input, label)`` pairs, read lazily.

    Labels come from ``labels`` (``test_labels``), else ``dataset.targets``, else from every
    sample (which reads each input once, up front).

    Args:
        pixels: inputs are integer pixels (uint8) the network sees scaled to [0, 1]; PIL
            images are read as uint8 and need it.
        num_workers: processes reading inputs while training and evaluating.
        normalize: standardise each input feature with the training split's statistics
            (:func:`standardized`).
        transform: deterministic preprocessing, applied to each batch as it is read.
    """
    name = name or type(train).__name__
    y = _known_labels(train, labels, f"{name} train")
    held_out = None if test is None else _lazy(
        test, _known_labels(test, test_labels, f"{name} test"), pixels, num_workers)
    top = max(int(y.max()) if len(y) else 0,
              int(held_out.y.max()) if held_out is not None and len(held_out) else 0)
    n = n_classes or len(getattr(train, "classes", None) or []) or top + 1
    data = lazy_splits(_lazy(train, y, pixels, num_workers), held_out, name=name, n_classes=n,
                       val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    return apply_transform(standardized(data) if normalize else data, transform)


def _lazy(source: Dataset, y: Tensor, pixels: bool, num_workers: int) -> LazyData:
    return LazyData(source, y, normalization=PixelNormalization() if pixels else None,
                    num_workers=num_workers)


def lazy_splits(whole: LazyData, test: LazyData | None, *, name: str, n_classes: int,
                val_fraction: float, test_fraction: float, seed: int) -> DataSplits:
    """``whole`` split as :func:`~continual.data.splits.stratified_splits` splits in-memory
    data (with a separate ``test`` set, validation from ``whole`` only), from its labels; one
    input is read, for the input shape."""
    if len(whole) == 0:
        raise ConfigError(f"{name}: the dataset is empty")
    check_labels(whole.y, n_classes, name)
    if whole.normalization is not None and first_inputs(whole).is_floating_point():
        raise ConfigError(f"{name}: inputs are floats but pixels=True; allowed: integer pixels "
                          "(uint8), or pixels=False")
    train, val, rest = split_indices(whole.y, name=name, n_classes=n_classes,
                                     val_fraction=val_fraction,
                                     test_fraction=0.0 if test is not None else test_fraction,
                                     seed=seed)
    if test is not None:
        check_labels(test.y, n_classes, f"{name} (test set)")
    held_out = whole.subset(rest) if test is None else test
    shape = tuple(first_inputs(whole).shape[1:])
    return DataSplits(whole.subset(train), whole.subset(val), held_out, n_classes, shape, name)


def standardized(data: DataSplits, min_std: float = 0.1, batch_size: int = 1024
                 ) -> DataSplits:
    """Lazy ``data`` with each input feature scaled to zero mean, unit variance on its training
    split, as ``normalize=True`` does in memory.

    The statistics take one pass over the training inputs (by the data's workers, summed in
    float64), so they equal the in-memory float32 ones up to rounding, not bit for bit. Integer
    pixels stay integers (the statistics join their pixel normalization); float inputs are
    standardised as they are read.
    """
    from continual.data.lazy_loading import ordered_batches

    train = data.train.decoded()
    total = squares = torch.zeros((1, *data.input_shape), dtype=torch.float64)
    for x, _, _ in ordered_batches(train, 0, len(train), batch_size):
        x = x.double()
        total, squares = total + x.sum(0, keepdim=True), squares + x.square().sum(0, keepdim=True)
    n = len(train)
    mean = total / n
    var = (squares - n * mean.square()) / max(n - 1, 1)
    mean, std = mean.float(), var.clamp_min(0).sqrt().float().clamp_min(min_std)
    pixels = data.train.normalization
    parts = (data.train, data.val, data.test)
    if pixels is not None and pixels.mean is None and not data.train.maps:
        joined = PixelNormalization(mean, std, pixels.max_value)
        scaled = [p.with_normalization(joined) for p in parts]
    else:
        scaled = [p.mapped(Standardize(mean, std)) for p in parts]
    return DataSplits(*scaled, data.n_classes, data.input_shape, data.name)


def _known_labels(dataset: Dataset, labels, name: str) -> Tensor:
    if labels is None:
        targets = getattr(dataset, "targets", None)
        found = _labels(targets, name) if targets is not None else None
        if found is not None and len(found) == len(dataset):  # type: ignore[arg-type]
            return found
        return torch.tensor([_label(dataset[i][1], i, name) for i in range(len(dataset))],
                            dtype=torch.long)  # type: ignore[arg-type]
    y = torch.as_tensor(np.asarray(labels))
    if y.ndim != 1 or y.is_floating_point() or len(y) != len(dataset):  # type: ignore[arg-type]
        raise ConfigError(f"{name}: labels of shape {tuple(y.shape)} and dtype {y.dtype}; "
                          f"allowed: one integer label per sample ({len(dataset)})")
    return y.long()
