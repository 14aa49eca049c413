"""Config-facing stream recipes: what a YAML ``data:`` section instantiates.

Each class only stores its arguments (so jsonargparse can validate them from the signature)
and builds the stream on demand with the plain functions of this package.

Transforms are given as ``class_path``/``init_args`` of modules (every
``torchvision.transforms.v2`` transform is one), alone or as a list applied in order: a
dataset's ``transform`` preprocesses every split once; a stream's ``train_transform`` augments
training batches only (see :mod:`continual.data.transforms`).
"""

from __future__ import annotations

from typing import Literal

from torch import nn
from torch.utils.data import Dataset

from continual.data.digits import digits
from continual.data.mnist import idx_folder
from continual.data.paths import find_data
from continual.data.permuted import permuted
from continual.data.split_classes import split_classes
from continual.data.splits import DataSplits
from continual.data.stream import Stream
from continual.data.transforms import apply_transform, augment
from continual.data.vision import vision_dataset

TransformArg = nn.Module | list[nn.Module] | None


class DatasetSource:
    """A dataset that can be loaded into train/val/test splits."""

    def load(self) -> DataSplits:
        raise NotImplementedError


class Digits(DatasetSource):
    """scikit-learn's 8×8 digits, offline (see :func:`continual.data.digits`)."""

    def __init__(self, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                 normalize: bool = True, transform: TransformArg = None):
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.normalize, self.transform = normalize, transform

    def load(self) -> DataSplits:
        data = digits(self.val_fraction, self.test_fraction, self.seed, self.normalize)
        return apply_transform(data, self.transform)


class IDXFolder(DatasetSource):
    """MNIST-format IDX files in a folder (see :func:`continual.data.mnist.idx_folder`)."""

    def __init__(self, root: str, name: str = "mnist", val_fraction: float = 0.1,
                 test_fraction: float = 0.2, seed: int = 0, normalize: bool = True,
                 transform: TransformArg = None):
        self.root, self.name, self.seed, self.normalize = root, name, seed, normalize
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.transform = transform

    def load(self) -> DataSplits:
        data = idx_folder(find_data(self.root), self.name, self.val_fraction, self.test_fraction,
                          self.seed, self.normalize)
        return apply_transform(data, self.transform)


class Vision(DatasetSource):
    """MNIST, Fashion-MNIST, CIFAR-10/100 (see :func:`continual.data.vision.vision_dataset`)."""

    def __init__(self, name: Literal["mnist", "fashion_mnist", "cifar10", "cifar100"],
                 root: str = "data", download: bool = False, val_fraction: float = 0.1,
                 seed: int = 0, normalize: bool = True, transform: TransformArg = None):
        self.name, self.root, self.download = name, root, download
        self.val_fraction, self.seed, self.normalize = val_fraction, seed, normalize
        self.transform = transform

    def load(self) -> DataSplits:
        data = vision_dataset(self.name, find_data(self.root), self.download, self.val_fraction,
                              self.seed, self.normalize)
        return apply_transform(data, self.transform)


class TorchDataset(DatasetSource):
    """Any map-style ``Dataset`` of ``(input, label)`` (see :func:`~continual.data.from_dataset`).

    Args:
        train: the dataset, by ``class_path``/``init_args``, e.g.
            ``torchvision.datasets.FashionMNIST`` with ``{root: data, train: true}``.
        test: its test set the same way; without it ``test_fraction`` of ``train`` is held out.
        num_workers: processes reading the samples (lazy: while training and evaluating).
        lazy: read inputs batch by batch while training (:func:`~continual.data.lazy_dataset`:
            labels from the dataset's ``targets``) instead of all into memory first.
        pixels: with ``lazy``, inputs are integer pixels (PIL images, uint8) seen in [0, 1].
    """

    def __init__(self, train: Dataset, test: Dataset | None = None, n_classes: int | None = None,
                 val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                 normalize: bool = False, transform: TransformArg = None, num_workers: int = 0,
                 lazy: bool = False, pixels: bool = False):
        self.train, self.test, self.n_classes, self.seed = train, test, n_classes, seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.normalize, self.transform, self.num_workers = normalize, transform, num_workers
        self.lazy, self.pixels = lazy, pixels

    def load(self) -> DataSplits:
        if self.lazy:
            from continual.data.lazy_sources import lazy_dataset

            return lazy_dataset(self.train, self.test, n_classes=self.n_classes,
                                pixels=self.pixels, val_fraction=self.val_fraction,
                                test_fraction=self.test_fraction, seed=self.seed,
                                num_workers=self.num_workers, normalize=self.normalize,
                                transform=self.transform)
        from continual.data.datasets import from_dataset

        return from_dataset(self.train, self.test, n_classes=self.n_classes,
                            val_fraction=self.val_fraction, test_fraction=self.test_fraction,
                            seed=self.seed, normalize=self.normalize, transform=self.transform,
                            num_workers=self.num_workers)


class ImageFolder(DatasetSource):
    """Images in ``root/<class>/`` (see :func:`~continual.data.image_folder`).

    Args:
        lazy: list the files and decode them batch by batch while training (by
            ``num_workers`` processes, :func:`~continual.data.lazy_image_folder`) instead of
            reading every image into memory first: for folders larger than memory.
    """

    def __init__(self, root: str, test_root: str | None = None,
                 size: int | list[int] | None = None, grayscale: bool = False,
                 val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                 normalize: bool = False, transform: TransformArg = None, lazy: bool = False,
                 num_workers: int = 0):
        self.root, self.test_root, self.size, self.grayscale = root, test_root, size, grayscale
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.normalize, self.transform = normalize, transform
        self.lazy, self.num_workers = lazy, num_workers

    def load(self) -> DataSplits:
        from continual.data.image_folder import image_folder
        from continual.data.lazy_sources import lazy_image_folder

        test_root = None if self.test_root is None else find_data(self.test_root)
        common = {"size": self.size, "grayscale": self.grayscale,
                  "val_fraction": self.val_fraction, "test_fraction": self.test_fraction,
                  "seed": self.seed, "normalize": self.normalize, "transform": self.transform}
        if self.lazy:
            return lazy_image_folder(find_data(self.root), test_root,
                                     num_workers=self.num_workers, **common)
        return image_folder(find_data(self.root), test_root, **common)


class LitData(DatasetSource):
    """A folder in litdata's chunked format, written by ``continual data optimize`` (or
    :func:`~continual.data.write_litdata`), streamed batch by batch by ``num_workers``
    processes (see :func:`~continual.data.litdata_splits`; ``pip install
    "continual[stream]"``).

    Args:
        folder: the training data (split into train/val/test unless ``test_folder``).
        test_folder: a separate test set written the same way.
    """

    def __init__(self, folder: str, test_folder: str | None = None, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, seed: int = 0, num_workers: int = 0,
                 transform: TransformArg = None):
        self.folder, self.test_folder, self.seed = folder, test_folder, seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.num_workers, self.transform = num_workers, transform

    def load(self) -> DataSplits:
        from continual.data.litdata_format import litdata_splits

        test = None if self.test_folder is None else find_data(self.test_folder)
        data = litdata_splits(find_data(self.folder), test, val_fraction=self.val_fraction,
                              test_fraction=self.test_fraction, seed=self.seed,
                              num_workers=self.num_workers)
        return apply_transform(data, self.transform)


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
        train_transform: augmentation of training batches (never of evaluation data).
    """

    def __init__(
        self,
        dataset: DatasetSource | None = None,
        n_tasks: int | None = 5,
        class_order: list[int] | None = None,
        classes_per_task: int | list[int] | None = None,
        scenario: Literal["class", "task"] = "class",
        train_transform: TransformArg = None,
    ) -> None:
        self.dataset = dataset if dataset is not None else Digits()
        self.n_tasks, self.class_order = n_tasks, class_order
        self.classes_per_task, self.scenario = classes_per_task, scenario
        self.train_transform = train_transform

    def build(self) -> Stream:
        stream = split_classes(
            self.dataset.load(), None if self.classes_per_task else self.n_tasks,
            class_order=self.class_order, classes_per_task=self.classes_per_task,
            scenario=self.scenario,
        )
        return augment(stream, self.train_transform)


class Rotated(StreamSource):
    """Domain-incremental rotated stream (see :func:`continual.data.rotated.rotated`)."""

    def __init__(self, dataset: DatasetSource | None = None, angles: list[float] | None = None,
                 train_transform: TransformArg = None) -> None:
        self.dataset = dataset if dataset is not None else Digits()
        self.angles = angles if angles is not None else [0.0, 45.0, 90.0, 135.0, 180.0]
        self.train_transform = train_transform

    def build(self) -> Stream:
        from continual.data.rotated import rotated

        return augment(rotated(self.dataset.load(), self.angles), self.train_transform)


class Permuted(StreamSource):
    """Domain-incremental permuted stream (see :func:`continual.data.permuted`)."""

    def __init__(
        self, dataset: DatasetSource | None = None, n_tasks: int = 5, seed: int = 0,
        first_identity: bool = True, train_transform: TransformArg = None,
    ) -> None:
        self.dataset = dataset if dataset is not None else Digits()
        self.n_tasks, self.seed, self.first_identity = n_tasks, seed, first_identity
        self.train_transform = train_transform

    def build(self) -> Stream:
        stream = permuted(self.dataset.load(), self.n_tasks, self.seed,
                          first_identity=self.first_identity)
        return augment(stream, self.train_transform)


class Drift(StreamSource):
    """A concept-drift stream, one task per time step, each tested under its own concept.

    See :func:`continual.data.drift.concept_drift`.

    Args:
        kind: ``sudden``, ``gradual``, ``incremental`` or ``recurring``.
        concept: what drifts: ``labels`` (a fixed relabelling) or ``rotation`` (the inputs).
        width: chunks over which ``gradual`` drift ramps up.
        period: chunks between switches of ``recurring`` drift.
        angle: the rotation of concept B (``concept: rotation``).
        degrees_per_step: the growth of ``incremental`` rotation.
    """

    def __init__(self, dataset: DatasetSource | None = None,
                 kind: Literal["sudden", "gradual", "incremental", "recurring"] = "sudden",
                 n_steps: int = 20, chunk_size: int = 100, drift_at: int = 10,
                 concept: Literal["labels", "rotation"] = "labels", width: int = 5,
                 period: int = 5, angle: float = 90.0, degrees_per_step: float = 10.0,
                 seed: int = 0, train_transform: TransformArg = None) -> None:
        self.dataset = dataset if dataset is not None else Digits()
        self.kind, self.n_steps, self.chunk_size = kind, n_steps, chunk_size
        self.drift_at, self.concept, self.width, self.period = drift_at, concept, width, period
        self.angle, self.degrees_per_step, self.seed = angle, degrees_per_step, seed
        self.train_transform = train_transform

    def build(self) -> Stream:
        from continual.data.drift import concept_drift

        drift = concept_drift(self.dataset.load(), self.kind, self.n_steps, self.chunk_size,
                              self.drift_at, concept=self.concept, width=self.width,
                              period=self.period, angle=self.angle,
                              degrees_per_step=self.degrees_per_step, seed=self.seed)
        return augment(drift.as_stream(), self.train_transform)


class Avalanche(StreamSource):
    """Any Avalanche benchmark (see :func:`continual.data.avalanche.from_avalanche`).

    Args:
        benchmark: import path of a benchmark factory, e.g.
            ``avalanche.benchmarks.classic.SplitMNIST``.
        kwargs: its keyword arguments (``n_experiences``, ``dataset_root`` …).
        scenario: ``class``, ``task`` or ``domain``; inferred when omitted.
        lazy: read each experience's inputs batch by batch instead of all up front (for
            benchmarks larger than memory; the same matrix).
        num_workers: processes reading lazy inputs.
    """

    def __init__(self, benchmark: str, kwargs: dict | None = None,
                 scenario: Literal["class", "task", "domain"] | None = None,
                 train_transform: TransformArg = None, lazy: bool = False,
                 num_workers: int = 0) -> None:
        self.benchmark, self.kwargs, self.scenario = benchmark, kwargs or {}, scenario
        self.train_transform, self.lazy, self.num_workers = train_transform, lazy, num_workers

    def build(self) -> Stream:
        from continual.data.avalanche import from_avalanche, load_benchmark

        stream = from_avalanche(load_benchmark(self.benchmark, self.kwargs), self.scenario,
                                lazy=self.lazy, num_workers=self.num_workers)
        return augment(stream, self.train_transform)
