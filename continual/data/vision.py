"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 from their standard files.

With ``download=True`` torchvision fetches and verifies the files; either way they are then
read directly (IDX for the MNIST family, the python-pickle batches for CIFAR), so a folder
that holds only part of a dataset (the offline MNIST test set) still loads, and a missing
file is reported by name. CIFAR batches are unpickled with a loader that only admits numpy
arrays, never arbitrary objects.

Images are held as they are stored, uint8, a quarter of the bytes of float32: the splits
declare how batches become floats (:func:`~continual.data.transforms.with_pixels`: scaled to
[0, 1] and, with ``normalize``, standardized per pixel on the training split), and the module
decodes each batch on its device.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from continual.data.mnist import idx_folder
from continual.data.splits import (
    DataSplits,
    check_labels,
    standardize,
    stratified_splits,
    with_official_test,
)
from continual.data.transforms import with_pixels
from continual.errors import ConfigError

VisionName = Literal["mnist", "fashion_mnist", "cifar10", "cifar100"]
_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10",
                "cifar100": "CIFAR100"}
_CIFAR = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                      ["test_batch"], b"labels", 10),
          "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100)}


def vision_dataset(name: VisionName, root: str | Path, download: bool = False,
                   val_fraction: float = 0.1, seed: int = 0, normalize: bool = True
                   ) -> DataSplits:
    """Load ``name`` from ``root`` (torchvision's folder layout), downloading if asked."""
    if name not in _TORCHVISION:
        raise ConfigError(f"name={name!r} is unknown; allowed: {', '.join(_TORCHVISION)}")
    root = Path(root)
    if download:
        import torchvision

        cls = getattr(torchvision.datasets, _TORCHVISION[name])
        for train in (True, False):
            cls(str(root), train=train, download=True)
    if name in _CIFAR:
        return _cifar(name, root, val_fraction, seed, normalize)
    folder = root / _TORCHVISION[name] / "raw"
    if not folder.is_dir():
        folder = root  # a plain folder of IDX files
    if not any(folder.glob("t10k-images-idx3-ubyte*")):
        raise ConfigError(
            f"root={str(root)!r} has no {name} files: expected {root}/{_TORCHVISION[name]}/raw/"
            "t10k-images-idx3-ubyte(.gz) and the other IDX files; allowed: put them there, or "
            "set download: true (needs internet)")
    return idx_folder(folder, name, val_fraction=val_fraction, seed=seed, normalize=normalize)


class _NumpyOnly(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers; refuses every other global."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
               "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar_batch(path: Path, label_key: bytes, n_classes: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 3, 32, 32]`` uint8 and labels from one CIFAR python batch file; labels
    outside ``0..n_classes-1`` are refused with the file's name."""
    try:
        batch = _NumpyOnly(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        if not isinstance(batch, dict):
            raise ValueError(f"a {type(batch).__name__}, not a dict")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
    except KeyError as e:
        raise ConfigError(f"{path} is not a CIFAR python batch (no {e.args[0]!r} entry)"
                          ) from None
    except (OSError, pickle.UnpicklingError, ValueError, TypeError, EOFError, OverflowError,
            AttributeError, IndexError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{path} is not a CIFAR python batch ({reason})") from None
    if len(data) != len(labels):
        raise ConfigError(f"{path} holds {len(data)} images but {len(labels)} labels")
    if n_classes is not None:
        check_labels(torch.from_numpy(labels), n_classes, str(path))
    return data, labels


def _cifar(name, root: Path, val_fraction: float, seed: int, normalize: bool) -> DataSplits:
    folder, train_files, test_files, key, n_classes = _CIFAR[name]
    missing = [f for f in train_files + test_files if not (root / folder / f).is_file()]
    if missing:
        raise ConfigError(f"root={str(root)!r} lacks {folder}/{missing[0]} ({len(missing)} "
                          f"{name} files missing); allowed: the python version of {name} "
                          "extracted there, or download: true (needs internet)")

    def load(files):
        parts = [read_cifar_batch(root / folder / f, key, n_classes) for f in files]
        x = torch.from_numpy(np.concatenate([p[0] for p in parts]))  # [N, 3, 32, 32] uint8
        return x, torch.from_numpy(np.concatenate([p[1] for p in parts]))

    data = with_official_test(load(train_files), load(test_files), name=name,
                              n_classes=n_classes, val_fraction=val_fraction, seed=seed)
    return with_pixels(data, standardize=normalize)


def from_tensors(x: torch.Tensor, y: torch.Tensor, name: str = "tensors",
                 n_classes: int | None = None, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, seed: int = 0, normalize: bool = False
                 ) -> DataSplits:
    """The user's own tensors (inputs, integer labels), split train/val/test stratified."""
    if len(x) != len(y):
        raise ConfigError(f"x has {len(x)} samples but y has {len(y)}; allowed: the same count")
    y = torch.as_tensor(y).long()
    if y.min() < 0:
        raise ConfigError(f"labels include {int(y.min())}; allowed: 0..n_classes-1")
    n = int(y.max()) + 1 if n_classes is None else n_classes
    if int(y.max()) >= n:
        raise ConfigError(f"labels go up to {int(y.max())} but n_classes={n}; "
                          f"allowed: labels 0..{n - 1}")
    data = stratified_splits(x, y, name=name, n_classes=n, val_fraction=val_fraction,
                             test_fraction=test_fraction, seed=seed)
    return standardize(data) if normalize else data
