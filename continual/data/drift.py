"""Concept-drift streams: time-ordered chunks whose concept changes at configured steps.

A *concept* is how inputs map to labels. Concept A is the data as it is; concept B is either
a fixed permutation of the labels (``concept="labels"``: the meaning of the data changes) or
a rotation of the inputs (``concept="rotation"``: the input distribution changes). Chunk
``t`` holds exactly ``round(share[t] · chunk_size)`` samples of concept B, with ``share``:

- ``sudden``: 0 before ``drift_at``, 1 from it on;
- ``gradual``: rising linearly over ``width`` chunks from ``drift_at``;
- ``recurring``: A and B alternating every ``period`` chunks from ``drift_at`` on;
- ``incremental``: no share; chunk ``t`` is rotated by ``degrees_per_step · t`` (from ``drift_at``).

The same stream serves the retraining simulation (``chunks``, in time order) and continual
learning (``as_stream()``: one task per chunk, each tested on the test set under its concept).
Over lazy data the chunks are lazy too: chosen by index, relabelled as tensors, and rotated
batch by batch as they are read (the same rows as in memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from continual.data.input_maps import InputMap, Rotate
from continual.data.lazy import LazyData
from continual.data.rotated import check_images
from continual.data.splits import DataSplits
from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.data.transforms import decoded
from continual.errors import ConfigError

DriftKind = Literal["sudden", "gradual", "incremental", "recurring"]


@dataclass
class DriftStream:
    """Chunks in time order, with the share of the new concept in each and the drift steps."""

    chunks: list[TensorData | LazyData]
    tests: list[TensorData | LazyData]
    share: list[float]
    drift_points: list[int]
    n_classes: int
    input_shape: tuple[int, ...]
    name: str
    info: dict = field(default_factory=dict)

    def as_stream(self) -> Stream:
        tasks = [Task(t, f"chunk {t}", chunk.with_task(t), chunk.subset(slice(0, 0)).with_task(t),
                      test.with_task(t), list(range(self.n_classes)))
                 for t, (chunk, test) in enumerate(zip(self.chunks, self.tests))]
        return Stream(tasks, "domain", self.n_classes, self.input_shape, name=self.name,
                      info={**self.info, "drift_points": self.drift_points})


def concept_share(kind: DriftKind, n_steps: int, drift_at: int, width: int = 1,
                  period: int = 1) -> list[float]:
    """Share of concept B in each chunk (see the module docstring)."""
    t = np.arange(n_steps)
    if kind == "sudden" or kind == "incremental":
        share = (t >= drift_at).astype(float)
    elif kind == "gradual":
        share = np.clip((t - drift_at + 1) / width, 0.0, 1.0)
    else:
        share = np.where(t >= drift_at, 1.0 - ((t - drift_at) // period) % 2, 0.0)
    return share.tolist()


def concept_drift(
    data: DataSplits,
    kind: DriftKind = "sudden",
    n_steps: int = 20,
    chunk_size: int = 100,
    drift_at: int = 10,
    *,
    concept: Literal["labels", "rotation"] = "labels",
    width: int = 5,
    period: int = 5,
    angle: float = 90.0,
    degrees_per_step: float = 10.0,
    seed: int = 0,
) -> DriftStream:
    """Build a drifting stream from ``data`` (seeded: the same arguments, the same chunks)."""
    if not 0 <= drift_at < n_steps:
        raise ConfigError(f"drift_at={drift_at} is outside the stream of {n_steps} steps; "
                          f"allowed: 0..{n_steps - 1}")
    for name, value in (("n_steps", n_steps), ("chunk_size", chunk_size), ("width", width),
                        ("period", period)):
        if value < 1:
            raise ConfigError(f"{name}={value} is invalid; allowed: 1 or more")
    data = decoded(data)  # the floats a network sees: rotations and mixing keep no declaration
    generator = torch.Generator().manual_seed(seed)
    label_map = torch.randperm(data.n_classes, generator=generator)
    while data.n_classes > 1 and (label_map == torch.arange(data.n_classes)).any():
        label_map = torch.randperm(data.n_classes, generator=generator)  # every label moves
    share = concept_share(kind, n_steps, drift_at, width, period)
    if kind == "incremental" or concept == "rotation":
        check_images(data.input_shape)

    def to_b(t: int) -> tuple[InputMap | None, torch.Tensor | None]:
        """Concept B at step ``t``: the input map and the label map (None: unchanged)."""
        if kind == "incremental":
            return Rotate(degrees_per_step * (t - drift_at + 1)), None
        return (None, label_map) if concept == "labels" else (Rotate(angle), None)

    order = torch.randperm(len(data.train), generator=generator)
    chunks, tests = [], []
    for t in range(n_steps):
        index = order[torch.arange(t * chunk_size, (t + 1) * chunk_size) % len(order)]
        chunks.append(_mix(data.train.subset(index), share[t], t, to_b, generator))
        tests.append(_mix(data.test, share[t], t, to_b, generator))
    drift_points = [t for t in range(1, n_steps) if share[t] != share[t - 1]] or \
        ([drift_at] if kind == "incremental" else [])
    return DriftStream(chunks, tests, share, drift_points, data.n_classes, data.input_shape,
                       name=f"{kind}-drift-{data.name}",
                       info={"kind": kind, "concept": concept, "seed": seed,
                             "label_map": label_map.tolist()})


def _mix(part: TensorData | LazyData, share: float, t: int, to_b, generator
         ) -> TensorData | LazyData:
    """``part`` with exactly ``round(share · len)`` samples (chosen at random) in concept B."""
    lazy = isinstance(part, LazyData)
    if lazy:
        part = part.with_transform(None).with_task(0)
    n_b = int(round(share * len(part)))
    if n_b == 0:
        return part if lazy else TensorData(part.x, part.y)
    chosen = torch.randperm(len(part), generator=generator)[:n_b]
    input_map, label_map = to_b(t)
    y = part.y.clone()
    if label_map is not None:
        y[chosen] = label_map[y[chosen]]
    if lazy:
        return (part if input_map is None else part.mapped(input_map, chosen)).with_labels(y)
    x = part.x.clone()
    if input_map is not None:
        x[chosen] = input_map(x[chosen])
    return TensorData(x, y)
