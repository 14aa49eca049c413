"""A task and a stream of tasks: what the runner iterates over."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from continual.data.tensors import TensorData

Scenario = Literal["class", "task", "domain"]


@dataclass
class Task:
    """One task: its data splits and the classes it contains."""

    id: int
    name: str
    train: TensorData
    val: TensorData
    test: TensorData
    classes: list[int]


@dataclass
class Stream:
    """Ordered tasks plus what a model needs to know about them.

    ``scenario`` decides how predictions are read: ``"class"`` and ``"domain"`` use one head
    over all ``n_classes``; ``"task"`` restricts each sample's prediction to its task's classes.
    """

    tasks: list[Task]
    scenario: Scenario
    n_classes: int
    input_shape: tuple[int, ...]
    name: str = "stream"
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, i: int) -> Task:
        return self.tasks[i]

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def map_tasks(self, fn: Callable[[Task], None]) -> Stream:
        """A copy whose tasks (shallow copies) were changed in place by ``fn``."""
        tasks = []
        for task in self.tasks:
            task = copy.copy(task)  # keeps extra attributes (a permuted task's permutation)
            fn(task)
            tasks.append(task)
        return Stream(tasks, self.scenario, self.n_classes, self.input_shape, self.name,
                      dict(self.info))

    def to(self, device: torch.device | str) -> Stream:
        """Every task's train/val/test tensors on ``device``, moved once for the whole run."""
        def move(task: Task) -> None:
            task.train, task.val, task.test = (p.to(device) for p in (task.train, task.val,
                                                                      task.test))
        return self.map_tasks(move)

    def class_mask(self) -> Tensor:
        """``mask[t, c]`` is True when class ``c`` belongs to task ``t``, shape ``[T, C]``."""
        mask = torch.zeros(len(self.tasks), self.n_classes, dtype=torch.bool)
        for task in self.tasks:
            mask[task.id, task.classes] = True
        return mask

    def head_mask(self) -> Tensor | None:
        """:meth:`class_mask` where each task has a head of its own (task-incremental streams),
        ``None`` where every sample competes among all classes."""
        return self.class_mask() if self.scenario == "task" else None

    def describe(self) -> dict:
        """Plain-data summary for results files."""
        return {
            "name": self.name,
            "scenario": self.scenario,
            "n_tasks": len(self.tasks),
            "n_classes": self.n_classes,
            "input_shape": list(self.input_shape),
            "tasks": [
                {"id": t.id, "name": t.name, "classes": t.classes, "n_train": len(t.train),
                 "n_test": len(t.test)}
                for t in self.tasks
            ],
            **self.info,
        }
