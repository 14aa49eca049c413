"""Config-facing stream recipes: what a YAML ``data:`` section instantiates.

Each class only stores its arguments (so jsonargparse can validate them from the signature)
and builds the stream on demand with the plain functions of this package.
"""

from __future__ import annotations

from typing import Literal

from continual.data.digits import digits
from continual.data.mnist import idx_folder
from continual.data.permuted import permuted
from continual.data.split_classes import split_classes
from continual.data.splits import DataSplits
from continual.data.stream import Stream
from continual.data.vision import vision_dataset


class DatasetSource:
    """A dataset that can be loaded into train/val/test splits."""

    def load(self) -> DataSplits:
        raise NotImplementedError


class Digits(DatasetSource):
    """scikit-learn's 8×8 digits, offline (see :func:`continual.data.digits`)."""

    def __init__(self, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                 normalize: bool = True):
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.normalize = normalize

    def load(self) -> DataSplits:
        return digits(self.val_fraction, self.test_fraction, self.seed, self.normalize)


class IDXFolder(DatasetSource):
    """MNIST-format IDX files in a folder (see :func:`continual.data.mnist.idx_folder`)."""

    def __init__(self, root: str, name: str = "mnist", val_fraction: float = 0.1,
                 test_fraction: float = 0.2, seed: int = 0, normalize: bool = True):
        self.root, self.name, self.seed, self.normalize = root, name, seed, normalize
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    def load(self) -> DataSplits:
        return idx_folder(self.root, self.name, self.val_fraction, self.test_fraction,
                          self.seed, self.normalize)


class Vision(DatasetSource):
    """MNIST, Fashion-MNIST, CIFAR-10/100 (see :func:`continual.data.vision.vision_dataset`)."""

    def __init__(self, name: Literal["mnist", "fashion_mnist", "cifar10", "cifar100"],
                 root: str = "data", download: bool = False, val_fraction: float = 0.1,
                 seed: int = 0, normalize: bool = True):
        self.name, self.root, self.download = name, root, download
        self.val_fraction, self.seed, self.normalize = val_fraction, seed, normalize

    def load(self) -> DataSplits:
        return vision_dataset(self.name, self.root, self.download, self.val_fraction,
                              self.seed, self.normalize)


class StreamSource:
    """A recipe for a :class:`Stream`."""

    def build(self) -> Stream:
        raise NotImplementedError


class SplitClasses(StreamSource):
    """Class- or task-incremental stream (see :func:`continual.data.split_classes`).

    Args:
        dataset: the dataset to cut into tasks (default: digits).
        n_tasks: number of tasks, classes shared out evenly.
        class_order: order in which classes arrive.
        classes_per_task: classes per task, one number or one per task; replaces ``n_tasks``.
        scenario: ``class`` (single head) or ``task`` (task id known at test time).
    """

    def __init__(
        self,
        dataset: DatasetSource | None = None,
        n_tasks: int | None = 5,
        class_order: list[int] | None = None,
        classes_per_task: int | list[int] | None = None,
        scenario: Literal["class", "task"] = "class",
    ) -> None:
        self.dataset = dataset if dataset is not None else Digits()
        self.n_tasks, self.class_order = n_tasks, class_order
        self.classes_per_task, self.scenario = classes_per_task, scenario

    def build(self) -> Stream:
        return split_classes(
            self.dataset.load(), None if self.classes_per_task else self.n_tasks,
            class_order=self.class_order, classes_per_task=self.classes_per_task,
            scenario=self.scenario,
        )


class Rotated(StreamSource):
    """Domain-incremental rotated stream (see :func:`continual.data.rotated.rotated`)."""

    def __init__(self, dataset: DatasetSource | None = None,
                 angles: list[float] | None = None) -> None:
        self.dataset = dataset if dataset is not None else Digits()
        self.angles = angles if angles is not None else [0.0, 45.0, 90.0, 135.0, 180.0]

    def build(self) -> Stream:
        from continual.data.rotated import rotated

        return rotated(self.dataset.load(), self.angles)


class Permuted(StreamSource):
    """Domain-incremental permuted stream (see :func:`continual.data.permuted`)."""

    def __init__(
        self, dataset: DatasetSource | None = None, n_tasks: int = 5, seed: int = 0,
        first_identity: bool = True,
    ) -> None:
        self.dataset = dataset if dataset is not None else Digits()
        self.n_tasks, self.seed, self.first_identity = n_tasks, seed, first_identity

    def build(self) -> Stream:
        return permuted(self.dataset.load(), self.n_tasks, self.seed,
                        first_identity=self.first_identity)


class Avalanche(StreamSource):
    """Any Avalanche benchmark (see :func:`continual.data.avalanche.from_avalanche`).

    Args:
        benchmark: import path of a benchmark factory, e.g.
            ``avalanche.benchmarks.classic.SplitMNIST``.
        kwargs: its keyword arguments (``n_experiences``, ``dataset_root`` …).
        scenario: ``class``, ``task`` or ``domain``; inferred when omitted.
    """

    def __init__(self, benchmark: str, kwargs: dict | None = None,
                 scenario: Literal["class", "task", "domain"] | None = None) -> None:
        self.benchmark, self.kwargs, self.scenario = benchmark, kwargs or {}, scenario

    def build(self) -> Stream:
        from continual.data.avalanche import from_avalanche, load_benchmark

        return from_avalanche(load_benchmark(self.benchmark, self.kwargs), self.scenario)
