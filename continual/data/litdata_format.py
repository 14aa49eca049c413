"""litdata's chunked format: prepare a dataset once, stream it in every run.

:func:`write_litdata` writes any supported source with ``litdata.optimize``: one item per
sample, ``{"x": input, "y": label, "t": task id}``, in the source's order. Labels and task ids
are also kept beside the chunks (``continual_labels.pt``), so :func:`read_litdata` knows them
without decoding a single input, and splits by class or task by indices alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from continual.data.lazy import LazyData, first_inputs, read_input
from continual.data.splits import DataSplits
from continual.data.tensors import PixelNormalization, TensorData
from continual.errors import ConfigError, missing_extra

LABELS = "continual_labels.pt"  # {"y": [N], "t": [N], "n_classes": int, "classes": [names]}


def _litdata(what: str) -> Any:
    try:
        import litdata
    except ImportError:
        raise ConfigError(missing_extra(what, "litdata", "stream")) from None
    return litdata


class _Item:
    """``optimize``'s function: the source's sample ``i`` as one litdata item."""

    def __init__(self, source: Dataset, y: Tensor, t: Tensor) -> None:
        self.source, self.y, self.t = source, y, t

    def __call__(self, i: int) -> dict[str, Any]:
        return {"x": read_input(self.source, i).contiguous(), "y": int(self.y[i]),
                "t": int(self.t[i])}


def write_litdata(source: TensorData | LazyData | Dataset | str | Path,
                  output_dir: str | Path, *, labels: Tensor | Sequence[int] | None = None,
                  tasks: Tensor | Sequence[int] | None = None, n_classes: int | None = None,
                  size: int | Sequence[int] | None = None, grayscale: bool = False,
                  chunk_bytes: str = "64MB") -> Path:
    """Write ``source`` into litdata's chunked format at ``output_dir``; returns the folder.

    Args:
        source: a folder of images (one sub-folder per class; decoded with ``size`` and
            ``grayscale`` as :func:`~continual.data.image_folder.image_folder` does),
            ``TensorData`` or ``LazyData`` (labels and task ids taken from it), or any
            map-style dataset of ``(input, label)`` pairs.
        labels, tasks: each sample's label and task id, for a dataset (task ids default to 0).
        chunk_bytes: litdata's chunk size; a reader holds a chunk or two in memory.
    """
    litdata = _litdata("write_litdata")
    classes: list[str] | None = None
    if isinstance(source, (str, Path)):
        from continual.data.image_folder import class_folders, image_files
        from continual.data.lazy_sources import ImageFiles

        root = Path(source)
        classes = class_folders(root, "source")
        hw = None if size is None else ((size, size) if isinstance(size, int) else tuple(size))
        paths, y = image_files(root, classes, classes)
        source, t = ImageFiles(paths, hw, grayscale), None
    elif isinstance(source, (TensorData, LazyData)):
        y, t = source.y, source.t
        source = _Rows(source)
    else:
        from continual.data.lazy_sources import _known_labels

        y = _known_labels(source, labels, type(source).__name__)
        t = None if tasks is None else torch.as_tensor(tasks).long()
    t = torch.zeros_like(y) if t is None else t
    if len(y) == 0 or len(t) != len(y):
        raise ConfigError(f"source has {len(y)} samples and {len(t)} task ids; allowed: one or "
                          "more samples, one task id each")
    out = Path(output_dir).resolve()
    litdata.optimize(_Item(source, y, t), list(range(len(y))), str(out), chunk_bytes=chunk_bytes,
                     num_workers=1, reorder_files=False, keep_data_ordered=True,
                     mode="overwrite", verbose=False,
                     start_method="fork" if sys.platform == "linux" else None)
    n = max(int(y.max()) + 1, n_classes or 0, len(classes or []))
    torch.save({"y": y.clone(), "t": t.clone(), "n_classes": n, "classes": classes or []},
               out / LABELS)
    return out


class _Rows(Dataset):
    """Inputs of in-memory or lazy data, by row."""

    def __init__(self, data: TensorData | LazyData) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Tensor:
        if isinstance(self.data, LazyData):
            return self.data[i][0]
        return self.data.x[i]


class LitDataSource(Dataset):
    """Item ``i`` of a local litdata folder, opened once per process.

    Each DataLoader worker opens its own ``StreamingDataset`` (a forked copy of the parent's
    would share its reader's state); the object pickles as its folder name.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = str(folder)
        self._open: tuple[int, Any] | None = None  # (pid, dataset)

    def __getitem__(self, i: int) -> Any:
        import os

        if self._open is None or self._open[0] != os.getpid():
            litdata = _litdata("read_litdata")
            # batch_decode=0: decode the row asked for only; litdata's default decodes a
            # window of ~32 rows around it, 10x the work for rows read in shuffled order
            self._open = os.getpid(), litdata.StreamingDataset(self.folder, batch_decode=0)
        return self._open[1][i]

    def __len__(self) -> int:
        return len(torch.load(Path(self.folder) / LABELS)["y"])

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "_open": None}


def read_litdata(folder: str | Path, *, num_workers: int = 0, pixels: bool | None = None
                 ) -> LazyData:
    """A folder :func:`write_litdata` wrote, as lazy data: labels and task ids from the side
    file, inputs read from the chunks batch by batch (by ``num_workers`` processes).

    Args:
        pixels: inputs are integer pixels seen scaled to [0, 1] (default: when they are uint8).
    """
    _litdata("read_litdata")
    folder = Path(folder)
    if not (folder / LABELS).is_file():
        raise ConfigError(f"folder={str(folder)!r} holds no {LABELS}; allowed: a folder "
                          "written by continual's write_litdata (continual data optimize)")
    meta = torch.load(folder / LABELS)
    data = LazyData(LitDataSource(folder), meta["y"], meta["t"], num_workers=num_workers)
    if pixels is None:
        pixels = first_inputs(data).dtype == torch.uint8
    return data.with_normalization(PixelNormalization()) if pixels else data


def litdata_classes(folder: str | Path) -> tuple[int, list[str]]:
    """The number of classes and their names (image folders) a litdata folder declares."""
    meta = torch.load(Path(folder) / LABELS)
    return int(meta["n_classes"]), list(meta["classes"])


def litdata_splits(folder: str | Path, test_folder: str | Path | None = None, *,
                   val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                   num_workers: int = 0) -> DataSplits:
    """Train/val/test splits of litdata folders written by :func:`write_litdata`, split as
    in-memory data is (the same seed gives the same rows), ready for the scenario builders
    (:func:`~continual.data.split_classes.split_classes`)."""
    from continual.data.lazy_sources import lazy_splits

    whole = read_litdata(folder, num_workers=num_workers)
    test = None if test_folder is None else read_litdata(test_folder, num_workers=num_workers)
    n = max(litdata_classes(f)[0] for f in (folder, test_folder) if f is not None)
    return lazy_splits(whole, test, name=Path(folder).name, n_classes=n,
                       val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
