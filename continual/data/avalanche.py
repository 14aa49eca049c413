"""Avalanche interop: any Avalanche benchmark (train and test streams of experiences) as a Stream.

Avalanche is an optional extra (``pip install "continual[avalanche]"``); it is imported only
here, and a config naming a benchmark without it ends in one line that names the extra.
Each experience becomes a task holding its samples as tensors, so every Avalanche benchmark
runs through this toolkit's Lightning strategies, fast path included; with ``lazy=True`` each
experience's dataset stays where Avalanche keeps it and is read batch by batch instead.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch.utils.data import DataLoader

from continual.data.lazy import LazyData, first_inputs
from continual.data.stream import Scenario, Stream, Task
from continual.data.tensors import TensorData
from continual.errors import ConfigError, missing_extra


def from_avalanche(benchmark: Any, scenario: Scenario | None = None, name: str | None = None,
                   batch_size: int = 1024, lazy: bool = False, num_workers: int = 0
                   ) -> Stream:
    """Convert ``benchmark`` (with ``train_stream`` / ``test_stream``) into a :class:`Stream`.

    Args:
        benchmark: an Avalanche benchmark object.
        scenario: ``class``, ``task`` or ``domain``; inferred when omitted: ``task`` when the
            experiences carry distinct task labels, ``domain`` when they share classes,
            else ``class``.
        name: the stream's name (default: the benchmark's class name).
        batch_size: samples read at a time while converting.
        lazy: keep each experience's dataset as :class:`~continual.data.lazy.LazyData` (labels
            from its ``targets``; inputs read, with Avalanche's transforms, only when a batch
            needs them): for datasets larger than memory. Task ids are the experience's
            position either way, so both give the same stream.
        num_workers: processes reading lazy inputs while training and evaluating.
    """
    train, test = list(benchmark.train_stream), list(benchmark.test_stream)
    if len(train) != len(test) or not train:
        raise ConfigError(f"benchmark has {len(train)} train and {len(test)} test experiences; "
                          "allowed: the same number, at least one")
    tasks = []
    for i, (tr, te) in enumerate(zip(train, test)):
        classes = _classes(tr)
        parts = [_lazy(exp.dataset, i, num_workers) if lazy else
                 _tensors(exp.dataset, i, batch_size) for exp in (tr, te)]
        empty = parts[0].subset(slice(0, 0))
        tasks.append(Task(i, f"experience {i}", parts[0], empty, parts[1], classes))
    if scenario is None:
        scenario = _infer_scenario(train, tasks)
    n_classes = int(getattr(benchmark, "n_classes", 0)) or \
        1 + max(c for task in tasks for c in task.classes)
    return Stream(tasks, scenario, n_classes, tuple(first_inputs(tasks[0].train).shape[1:]),
                  name=name or type(benchmark).__name__, info={"source": "avalanche"})


def _classes(experience) -> list[int]:
    """The classes of an experience: as the classic builders record them, or (Avalanche 0.6's
    ``benchmark_from_datasets``, which does not) read off its dataset's targets."""
    known = getattr(experience, "classes_in_this_experience", None)
    if known is None:
        known = torch.unique(torch.as_tensor(list(experience.dataset.targets))).tolist()
    return sorted(int(c) for c in known)


def _lazy(dataset, task_id: int, num_workers: int) -> LazyData:
    """An experience's dataset read lazily: its labels now, from ``targets`` (not the inputs)."""
    y = torch.as_tensor(list(dataset.targets)).long()
    return LazyData(dataset, y, torch.full_like(y, task_id), num_workers=num_workers)


def _tensors(dataset, task_id: int, batch_size: int) -> TensorData:
    xs, ys = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        xs.append(batch[0])
        ys.append(batch[1])
    x, y = torch.cat(xs), torch.cat(ys).long()
    return TensorData(x, y, torch.full_like(y, task_id))


def _infer_scenario(train, tasks: list[Task]) -> Scenario:
    labels = {int(getattr(exp, "task_label", 0) or 0) for exp in train}
    if len(labels) == len(train) > 1:
        return "task"
    seen: set[int] = set()
    for task in tasks:
        if seen & set(task.classes):
            return "domain"
        seen |= set(task.classes)
    return "class"


def load_benchmark(path: str, kwargs: dict[str, Any] | None = None) -> Any:
    """Call the benchmark factory at import ``path`` (e.g. ``...classic.SplitMNIST``)."""
    module_name, _, attr = path.rpartition(".")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except ImportError as e:
        if (e.name or "").split(".")[0] == "avalanche":
            raise ConfigError(missing_extra(f"benchmark={path!r}", "avalanche",
                                            "avalanche")) from None
        raise ConfigError(f"benchmark={path!r} cannot be imported ({e}); allowed: an import "
                          "path such as avalanche.benchmarks.classic.SplitMNIST") from None
    except (AttributeError, ValueError) as e:
        raise ConfigError(f"benchmark={path!r} cannot be imported ({e}); allowed: an import "
                          "path such as avalanche.benchmarks.classic.SplitMNIST") from None
    return factory(**(kwargs or {}))
