"""Tensor-to-tensor transforms for data held as tensors (torchvision.transforms.v2 work on them).

Two kinds, applied at different times:

- ``transform`` (preprocessing: normalise, resize) runs **once**, on every split, when a
  dataset is materialised (:func:`apply_transform`). It must be deterministic: what it gives
  is exactly what evaluation sees.
- ``train_transform`` (augmentation: random crop, flip) runs **per training batch**, per
  sample, on the tasks' training data only (:func:`augment`); validation and test data and
  the stored tensors are never touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from continual.data.splits import DataSplits
from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData, Transform
from continual.errors import ConfigError


def compose(spec: Transform | Sequence[Transform] | None) -> Transform | None:
    """One callable from a transform, a list of them (applied in order), or None."""
    if spec is None or callable(spec):
        return spec
    steps = list(spec)
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    from torchvision.transforms import v2

    return v2.Compose(steps)


def apply_transform(data: DataSplits, transform: Transform | Sequence[Transform] | None,
                    chunk: int = 4096) -> DataSplits:
    """``data`` with ``transform`` applied once to the inputs of every split, in chunks.

    A chunk is one call, so a random transform here would treat a whole chunk alike; random
    augmentation belongs in :func:`augment`.
    """
    transform = compose(transform)
    if transform is None:
        return data

    def apply(part: TensorData) -> TensorData:
        if len(part) == 0:
            return TensorData(part.x, part.y, part.t, part.transform)
        try:
            x = torch.cat([transform(part.x[i:i + chunk]) for i in range(0, len(part), chunk)])
        except (TypeError, ValueError, RuntimeError) as e:
            raise ConfigError(f"transform {transform!r} failed on inputs of shape "
                              f"{tuple(part.x.shape[1:])} ({str(e).splitlines()[0]})") from None
        return TensorData(x, part.y, part.t, part.transform)

    train, val, test = apply(data.train), apply(data.val), apply(data.test)
    shape = next((tuple(p.x.shape[1:]) for p in (train, val, test) if len(p)), data.input_shape)
    return DataSplits(train, val, test, data.n_classes, shape, data.name)


def augment(stream: Stream, train_transform: Transform | Sequence[Transform] | None) -> Stream:
    """A copy of ``stream`` whose tasks' training data applies ``train_transform`` per batch.

    Only ``task.train`` carries it: evaluation reads ``task.test`` (and strategies read
    ``x``) untouched.
    """
    transform = compose(train_transform)
    if transform is None:
        return stream

    def set_train(task: Task) -> None:
        task.train = TensorData(task.train.x, task.train.y, task.train.t, transform)

    return stream.map_tasks(set_train)
