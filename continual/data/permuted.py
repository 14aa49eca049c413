"""Domain-incremental streams: the same classes, each task seen through a new pixel permutation."""

from __future__ import annotations

import torch

from continual.data.input_maps import Permute
from continual.data.lazy import LazyData
from continual.data.splits import DataSplits
from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.data.transforms import decoded
from continual.errors import ConfigError


def permuted(
    data: DataSplits, n_tasks: int, seed: int = 0, *, first_identity: bool = True
) -> Stream:
    """Permuted-``data``: task ``i`` shuffles input features with its own fixed permutation.

    One permutation per task, drawn from ``seed``, applied alike to train, val and test (to
    lazy data as each batch is read: the same rows, nothing loaded up front).
    ``first_identity`` keeps task 0 as the original data, the usual convention.
    """
    if n_tasks < 1:
        raise ConfigError(f"n_tasks={n_tasks} is invalid; allowed: 1 or more")
    data = decoded(data)  # per-pixel statistics would not follow the permuted pixels
    n_features = int(torch.tensor(data.input_shape).prod())
    generator = torch.Generator().manual_seed(seed)
    tasks = []
    for i in range(n_tasks):
        perm = torch.randperm(n_features, generator=generator)
        if i == 0 and first_identity:
            perm = torch.arange(n_features)
        parts = [_permute(part, perm, i) for part in (data.train, data.val, data.test)]
        tasks.append(Task(i, f"permutation {i}", *parts, list(range(data.n_classes))))
        tasks[-1].permutation = perm
    return Stream(
        tasks, "domain", data.n_classes, data.input_shape, name=f"permuted-{data.name}",
        info={"seed": seed},
    )


def _permute(part: TensorData | LazyData, perm: torch.Tensor, task_id: int
             ) -> TensorData | LazyData:
    if isinstance(part, LazyData):  # permuted batch by batch as it is read
        return part.mapped(Permute(perm)).with_transform(None).with_task(task_id)
    flat = part.x.flatten(1)[:, perm]  # flatten, not reshape(n, -1): also for 0 samples
    return TensorData(flat.reshape(part.x.shape), part.y, torch.full_like(part.y, task_id))
