"""Domain-incremental streams of rotated images: the same classes, a new angle per task."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms.v2 import functional as TF

from continual.data.splits import DataSplits
from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.data.transforms import decoded
from continual.errors import ConfigError


def rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    """Images ``[N, C, H, W]`` rotated by ``angle`` degrees (counter-clockwise), same size."""
    if x.ndim != 4:
        raise ConfigError(f"inputs of shape {tuple(x.shape[1:])} cannot be rotated; allowed: "
                          "images [channels, height, width]")
    return TF.rotate(x, float(angle))


def rotated(data: DataSplits, angles: Sequence[float]) -> Stream:
    """Rotated-``data``: task ``i`` shows every image turned by ``angles[i]`` degrees."""
    if not angles:
        raise ConfigError("angles=[] is invalid; allowed: one angle per task, at least one")
    data = decoded(data)  # rotate the floats a network sees (stored pixels would pad black)
    tasks = []
    for i, angle in enumerate(angles):
        parts = [TensorData(rotate(p.x, angle), p.y, torch.full_like(p.y, i))
                 for p in (data.train, data.val, data.test)]
        tasks.append(Task(i, f"rotation {angle:g}°", *parts, list(range(data.n_classes))))
    return Stream(tasks, "domain", data.n_classes, data.input_shape, name=f"rotated-{data.name}",
                  info={"angles": [float(a) for a in angles]})
