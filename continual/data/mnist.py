"""MNIST-style data read straight from IDX files (gzip or raw), no torchvision folder layout.

``torchvision.datasets.MNIST(download=False)`` refuses a folder without the training files;
reading IDX directly also serves the offline MNIST *test* set on its own. 8-bit images stay
uint8, declaring how batches become floats (:func:`~continual.data.transforms.with_pixels`).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from continual.data.paths import WHERE
from continual.data.splits import (
    DataSplits,
    check_labels,
    standardize,
    stratified_splits,
    with_official_test,
)
from continual.data.transforms import with_pixels
from continual.errors import ConfigError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (``.gz`` or raw) as an array of its declared dtype and shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ConfigError(f"{path} is not a readable IDX file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ConfigError(f"{path} is not an IDX file (bad magic number); allowed: MNIST-format "
                          "idx1/idx3 files")
    ndim, dtype = raw[3], np.dtype(_DTYPES[raw[2]])
    if len(raw) < 4 + 4 * ndim:
        raise ConfigError(f"{path} ends inside its header ({len(raw)} bytes, {ndim} dimensions "
                          "declared); the file is truncated or corrupt")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = len(raw) - 4 - 4 * ndim
    if body != int(np.prod(shape, dtype=object)) * dtype.itemsize:
        raise ConfigError(f"{path} holds {body // dtype.itemsize} values but its header says "
                          f"{shape}; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)


def _find(root: Path, prefix: str, kind: str) -> Path | None:
    for name in (f"{prefix}-{kind}-ubyte.gz", f"{prefix}-{kind}-ubyte",
                 f"{prefix}-{kind}.idx{'3' if kind == 'images-idx3' else '1'}-ubyte"):
        if (root / name).is_file():
            return root / name
    return None


def idx_folder(root: str | Path, name: str = "mnist", val_fraction: float = 0.1,
               test_fraction: float = 0.2, seed: int = 0, normalize: bool = True
               ) -> DataSplits:
    """Load MNIST-format IDX files from ``root``.

    Uses ``train-*`` files when present (the official test set stays the test split);
    otherwise the ``t10k-*`` files alone, split into train/val/test with ``seed``
    (stratified; figures on such a split are not comparable with the 60,000-image papers).
    Inputs are ``[N, 1, H, W]``: uint8 images as stored, decoded per batch to [0, 1] (and,
    with ``normalize``, standardized per pixel on the training split); other IDX types as
    float32 divided by 255.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"root={str(root)!r} does not exist ({WHERE}); allowed: a folder "
                          "holding t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    parts = {}
    for prefix in ("train", "t10k"):
        images, labels = _find(root, prefix, "images-idx3"), _find(root, prefix, "labels-idx1")
        if images and labels:
            x = torch.from_numpy(read_idx(images).copy()).unsqueeze(1)
            if x.dtype != torch.uint8:
                x = x.float() / 255.0
            y = torch.from_numpy(read_idx(labels).astype(np.int64)).reshape(-1)
            if len(y) and int(y.min()) < 0:
                check_labels(y, int(y.max()) + 1, str(labels))
            if len(x) != len(y):
                raise ConfigError(f"{images.name} has {len(x)} images but {labels.name} has "
                                  f"{len(y)} labels")
            parts[prefix] = (x, y)
    if "t10k" not in parts:
        raise ConfigError(f"root={str(root)!r} has no t10k-images-idx3-ubyte(.gz) with "
                          "t10k-labels-idx1-ubyte(.gz); allowed: a folder of MNIST-format files")
    n_classes = int(parts["t10k"][1].max()) + 1
    if "train" in parts:
        data = with_official_test(parts["train"], parts["t10k"], name=name, n_classes=n_classes,
                                  val_fraction=val_fraction, seed=seed)
    else:
        data = stratified_splits(*parts["t10k"], name=name, n_classes=n_classes,
                                 val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    if data.train.x.dtype == torch.uint8:
        return with_pixels(data, standardize=normalize)
    return standardize(data) if normalize else data
