"""Datasets, tasks and streams."""

from continual.data.avalanche import from_avalanche
from continual.data.datasets import from_dataset
from continual.data.digits import digits
from continual.data.image_folder import image_folder
from continual.data.lazy import LazyData
from continual.data.lazy_sources import lazy_dataset, lazy_image_folder
from continual.data.litdata_format import litdata_splits, read_litdata, write_litdata
from continual.data.mnist import idx_folder, read_idx
from continual.data.permuted import permuted
from continual.data.sources import (
    Avalanche,
    DatasetSource,
    Digits,
    Drift,
    IDXFolder,
    ImageFolder,
    LitData,
    Permuted,
    Rotated,
    SplitClasses,
    StreamSource,
    TorchDataset,
    Vision,
)
from continual.data.split_classes import split_classes
from continual.data.splits import DataSplits, stratified_splits
from continual.data.stream import Scenario, Stream, Task
from continual.data.task_tensors import from_task_tensors
from continual.data.tensors import TensorData, pass_batch
from continual.data.transforms import apply_transform, augment
from continual.data.vision import from_tensors, vision_dataset

__all__ = [
    "Avalanche", "DataSplits", "DatasetSource", "Digits", "Drift", "IDXFolder", "ImageFolder",
    "LazyData", "LitData", "Permuted", "Rotated", "Scenario", "SplitClasses", "Stream",
    "StreamSource", "Task", "TensorData", "TorchDataset", "Vision", "apply_transform", "augment",
    "digits", "from_avalanche", "from_dataset", "from_task_tensors", "from_tensors", "idx_folder",
    "image_folder", "lazy_dataset", "lazy_image_folder", "litdata_splits", "pass_batch", "permuted",
    "read_litdata", "write_litdata", "read_idx", "split_classes", "stratified_splits",
    "vision_dataset",
]
