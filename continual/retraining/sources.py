"""Deployment streams for ``continual simulate``: time-ordered chunks of labelled data.

A drift scenario draws its chunks from *all* of a dataset's samples (train, validation and
test pooled) without repeating one, so a chunk is never scored on samples a model trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from continual.data.drift import DriftKind, DriftStream, concept_drift
from continual.data.sources import DatasetSource, Digits
from continual.data.splits import DataSplits
from continual.data.tensors import TensorData
from continual.errors import ConfigError


class ChunkSource:
    """A recipe for a :class:`~continual.data.drift.DriftStream` (chunks in time order)."""

    def build(self) -> DriftStream:
        raise NotImplementedError


class DriftingChunks(ChunkSource):
    """A concept-drift scenario over a dataset (see :func:`continual.data.drift.concept_drift`).

    Args:
        dataset: where samples come from (default: digits).
        kind: ``sudden``, ``gradual``, ``incremental`` or ``recurring``.
        concept: ``labels`` (the label mapping changes) or ``rotation`` (the inputs rotate).
        n_steps, chunk_size, drift_at, width, period, angle, degrees_per_step, seed: as in
            :func:`~continual.data.drift.concept_drift`.
    """

    def __init__(self, dataset: DatasetSource | None = None, kind: DriftKind = "sudden",
                 concept: Literal["labels", "rotation"] = "labels", n_steps: int = 24,
                 chunk_size: int = 70, drift_at: int = 12, width: int = 5, period: int = 5,
                 angle: float = 90.0, degrees_per_step: float = 10.0, seed: int = 0) -> None:
        self.dataset = dataset if dataset is not None else Digits()
        self.kind, self.concept, self.n_steps, self.chunk_size = kind, concept, n_steps, chunk_size
        self.drift_at, self.width, self.period, self.angle = drift_at, width, period, angle
        self.degrees_per_step, self.seed = degrees_per_step, seed

    def build(self) -> DriftStream:
        data = self.dataset.load()
        pool = TensorData.concat([p for p in (data.train, data.val, data.test) if len(p)])
        need = self.n_steps * self.chunk_size
        if need > len(pool):
            raise ConfigError(f"n_steps × chunk_size = {need} exceeds the {len(pool)} samples of "
                              f"{data.name}; allowed: at most {len(pool)}, so no sample repeats")
        pooled = DataSplits(pool, data.val, data.test, data.n_classes, data.input_shape,
                            data.name)
        return concept_drift(pooled, self.kind, self.n_steps, self.chunk_size, self.drift_at,
                             concept=self.concept, width=self.width, period=self.period,
                             angle=self.angle, degrees_per_step=self.degrees_per_step,
                             seed=self.seed)


class TimeOrdered(ChunkSource):
    """The user's own labelled data, in its time order, cut into chunks.

    Args:
        path: a ``.npz`` file or a ``torch.save`` file (read with ``weights_only``) holding
            ``x`` (inputs, first axis = time) and ``y`` (integer labels).
        chunk_size: samples per chunk (a last, shorter chunk is kept).
        drift_points: steps where the user knows the data changed (drawn on the plot).
        n_classes: number of classes (default: the largest label + 1).
    """

    def __init__(self, path: str, chunk_size: int = 100, drift_points: list[int] | None = None,
                 n_classes: int | None = None) -> None:
        self.path, self.chunk_size = path, chunk_size
        self.drift_points, self.n_classes = drift_points or [], n_classes

    def build(self) -> DriftStream:
        x, y = _read_xy(Path(self.path))
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size={self.chunk_size} is invalid; allowed: 1 or more")
        return chunked(TensorData(x, y), self.chunk_size, self.drift_points, self.n_classes,
                       name=Path(self.path).stem)


def chunked(data: TensorData, chunk_size: int, drift_points: list[int] | None = None,
            n_classes: int | None = None, name: str = "stream") -> DriftStream:
    """Cut time-ordered ``data`` into consecutive chunks (the Python route to simulate)."""
    chunks = [data.subset(slice(s, s + chunk_size)) for s in range(0, len(data), chunk_size)]
    classes = int(data.y.max()) + 1 if n_classes is None else n_classes
    return DriftStream(chunks, [], [], list(drift_points or []), classes,
                       tuple(data.x.shape[1:]), name=name, info={"kind": "time-ordered"})


def _read_xy(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    allowed = "allowed: an .npz or .pt file with arrays x and y"
    if path.is_dir():  # an image folder or a litdata folder (continual retrain's batches)
        from continual.retraining.batch_folders import read_folder

        return read_folder(path)
    if not path.is_file():
        raise ConfigError(f"path={str(path)!r} does not exist or is not a file; {allowed}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if not hasattr(f, "files"):  # a bare .npy saved under an .npz name
                    raise ValueError(f"a single {type(f).__name__}, not an archive")
                x, y = _tensor(f["x"], "x"), _tensor(f["y"], "y")
        else:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(blob, dict):
                raise ValueError(f"a {type(blob).__name__}, not a dict with keys x and y")
            x, y = _tensor(blob["x"], "x"), _tensor(blob["y"], "y")
    except KeyError as e:
        raise ConfigError(f"path={str(path)!r} has no array {e.args[0]!r}; {allowed}") from None
    except Exception as e:  # whatever a damaged or foreign file raises (weights-only refusal,
        # a truncated zip, strings): one line, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConfigError(f"path={str(path)!r} is unreadable ({type(e).__name__}: "
                          f"{first[:200]}); {allowed}") from None
    if x.ndim < 1 or y.ndim != 1 or len(x) != len(y) or len(y) == 0 \
            or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ConfigError(f"path={str(path)!r} holds x of shape {tuple(x.shape)} and y of shape "
                          f"{tuple(y.shape)} ({y.dtype}); allowed: y a 1-d array of integer "
                          "labels, as many as inputs along x's first axis, at least one")
    if x.is_complex():
        raise ConfigError(f"path={str(path)!r} holds complex inputs x; allowed: real numbers")
    return x.float(), y.long()


def _tensor(value: object, name: str) -> torch.Tensor:
    """``value`` as a tensor, refusing what holds no numbers (strings, objects)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{name} holds {value.dtype} values, not numbers")
        return torch.from_numpy(value.copy())  # C order, 0-d kept 0-d
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):  # nested lists of numbers (strings raise here)
        return torch.as_tensor(value)
    raise ValueError(f"{name} is a {type(value).__name__}, not an array")
