"""The user's own tasks, already split: per-task tensors as a stream, no further split."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from continual.data.stream import Scenario, Stream, Task
from continual.data.tensors import TensorData
from continual.errors import ConfigError


def from_task_tensors(tasks: Sequence[tuple[Tensor, Tensor, Tensor, Tensor]],
                      scenario: Scenario = "class", n_classes: int | None = None,
                      name: str = "tasks") -> Stream:
    """A stream of the user's own tasks, each ``(x_train, y_train, x_test, y_test)``.

    Nothing is split or shuffled: each task trains on its ``x_train`` and is scored on its
    ``x_test`` as given (no validation part). Labels are integers ``0..n_classes-1`` shared by
    all tasks (``n_classes`` defaults to the largest label + 1); a task's classes are the labels
    its training part holds.

    Args:
        tasks: per task, training inputs and labels, test inputs and labels.
        scenario: ``class``, ``task`` (a head per task: logits outside its classes are
            suppressed) or ``domain`` (the same classes in every task).
        n_classes: the number of classes, when some never occur in the tensors.
        name: the stream's name in results.
    """
    if not tasks:
        raise ConfigError("tasks=[] is invalid; allowed: one or more (x_train, y_train, "
                          "x_test, y_test)")
    parts = [_task(i, *t) for i, t in enumerate(tasks)]
    top = max(int(p.y.max()) for t in parts for p in (t.train, t.test) if len(p)) + 1
    n = top if n_classes is None else n_classes
    if top > n:
        raise ConfigError(f"labels go up to {top - 1} but n_classes={n}; allowed: labels "
                          f"0..{n - 1}")
    return Stream(parts, scenario, n, tuple(parts[0].train.x.shape[1:]), name=name,
                  info={"source": "task tensors"})


def _task(i: int, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor) -> Task:
    parts = []
    for what, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if len(x) != len(y) or y.ndim != 1:
            raise ConfigError(f"task {i + 1} {what}: {len(x)} inputs but labels of shape "
                              f"{tuple(y.shape)}; allowed: one integer label an input")
        if y.is_floating_point() or (len(y) and int(y.min()) < 0):
            raise ConfigError(f"task {i + 1} {what}: labels must be integers >= 0")
        y = y.long()
        parts.append(TensorData(x, y, torch.full_like(y, i)))
    train, test = parts
    if len(train) == 0:
        raise ConfigError(f"task {i + 1} train: no samples; allowed: one or more")
    empty = TensorData(train.x[:0], train.y[:0], train.t[:0])
    return Task(i, f"task {i + 1}", train, empty, test, sorted(train.y.unique().tolist()))
