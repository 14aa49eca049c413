"""Class-incremental and task-incremental streams: each task brings new classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from continual.data.splits import DataSplits
from continual.data.stream import Scenario, Stream, Task
from continual.data.tensors import TensorData
from continual.errors import ConfigError


def split_classes(
    data: DataSplits,
    n_tasks: int | None = None,
    *,
    class_order: Sequence[int] | None = None,
    classes_per_task: int | Sequence[int] | None = None,
    scenario: Scenario = "class",
) -> Stream:
    """Cut ``data`` into tasks of disjoint classes.

    Args:
        data: the dataset to cut.
        n_tasks: number of tasks; classes are shared out as evenly as possible, earlier tasks
            taking one more when they do not divide.
        class_order: the order classes arrive in (default ``0..C-1``).
        classes_per_task: classes in each task, one number for all or one per task (uneven
            tasks); replaces ``n_tasks``.
        scenario: ``"class"`` (one head over all classes seen, the hard setting) or ``"task"``
            (the task id is known at test time, predictions restricted to its classes).
    """
    if scenario not in ("class", "task"):
        raise ConfigError(f"scenario={scenario!r} is invalid; allowed: 'class' or 'task'")
    order = _check_class_order(data, class_order)
    sizes = _task_sizes(len(order), n_tasks, classes_per_task)
    bounds = np.cumsum([0, *sizes])
    tasks = []
    for i in range(len(sizes)):
        classes = order[bounds[i]:bounds[i + 1]]
        parts = [_select(part, classes, i) for part in (data.train, data.val, data.test)]
        if len(parts[0]) == 0:
            raise ConfigError(f"task {i} (classes {classes}) has no training samples")
        tasks.append(Task(i, f"classes {','.join(map(str, classes))}", *parts, classes))
    return Stream(
        tasks, scenario, data.n_classes, data.input_shape, name=f"split-{data.name}",
        info={"class_order": order},
    )


def _check_class_order(data: DataSplits, class_order: Sequence[int] | None) -> list[int]:
    if class_order is None:
        return list(range(data.n_classes))
    order = [int(c) for c in class_order]
    duplicates = sorted({c for c in order if order.count(c) > 1})
    if duplicates:
        raise ConfigError(f"class_order={order} repeats classes {duplicates}; allowed: each once")
    unknown = [c for c in order if not 0 <= c < data.n_classes]
    if unknown:
        raise ConfigError(
            f"class_order={order} has unknown classes {unknown}; allowed: 0..{data.n_classes - 1}"
        )
    return order


def _task_sizes(n_order: int, n_tasks: int | None, per_task: int | Sequence[int] | None):
    if per_task is not None:
        sizes = [per_task] * (n_order // per_task) if isinstance(per_task, int) else list(per_task)
        if any(s <= 0 for s in sizes) or sum(sizes) != n_order or not sizes:
            raise ConfigError(
                f"classes_per_task={per_task} is invalid for {n_order} classes; allowed: positive "
                f"sizes summing to {n_order}"
            )
        return sizes
    if n_tasks is None:
        raise ConfigError("n_tasks is missing; give n_tasks or classes_per_task")
    if not 1 <= n_tasks <= n_order:
        raise ConfigError(
            f"n_tasks={n_tasks} is invalid for {n_order} classes; allowed: 1..{n_order}"
        )
    return [len(chunk) for chunk in np.array_split(np.arange(n_order), n_tasks)]


def _select(part: TensorData, classes: list[int], task_id: int) -> TensorData:
    keep = torch.isin(part.y, torch.tensor(classes))
    return part.subset(keep).with_task(task_id)
