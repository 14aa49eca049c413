"""Domain-incremental streams of rotated images: the same classes, a new angle per task."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms.v2 import functional as TF

from continual.data.input_maps import Rotate
from continual.data.lazy import LazyData
from continual.data.splits import DataSplits
from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.data.transforms import decoded
from continual.errors import ConfigError


def rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    """Images ``[N, C, H, W]`` rotated by ``angle`` degrees (counter-clockwise), same size."""
    check_images(tuple(x.shape[1:]))
    return TF.rotate(x, float(angle))


def check_images(input_shape: tuple[int, ...]) -> None:
    """Refuse inputs that are not images ``[C, H, W]`` (before a lazy stream reads any)."""
    if len(input_shape) != 3:
        raise ConfigError(f"inputs of shape {tuple(input_shape)} cannot be rotated; allowed: "
                          "images [channels, height, width]")


def _rotated(part: TensorData | LazyData, angle: float, task_id: int) -> TensorData | LazyData:
    if isinstance(part, LazyData):  # rotated batch by batch as it is read
        return part.mapped(Rotate(angle)).with_transform(None).with_task(task_id)
    return TensorData(rotate(part.x, angle), part.y, torch.full_like(part.y, task_id))


def rotated(data: DataSplits, angles: Sequence[float]) -> Stream:
    """Rotated-``data``: task ``i`` shows every image turned by ``angles[i]`` degrees."""
    if not angles:
        raise ConfigError("angles=[] is invalid; allowed: one angle per task, at least one")
    check_images(data.input_shape)
    data = decoded(data)  # rotate the floats a network sees (stored pixels would pad black)
    tasks = []
    for i, angle in enumerate(angles):
        parts = [_rotated(p, angle, i) for p in (data.train, data.val, data.test)]
        tasks.append(Task(i, f"rotation {angle:g}°", *parts, list(range(data.n_classes))))
    return Stream(tasks, "domain", data.n_classes, data.input_shape, name=f"rotated-{data.name}",
                  info={"angles": [float(a) for a in angles]})
