"""Datasets, tasks and streams."""

from continual.data.digits import digits
from continual.data.mnist import idx_folder, read_idx
from continual.data.permuted import permuted
from continual.data.sources import (
    Avalanche,
    DatasetSource,
    Digits,
    IDXFolder,
    Permuted,
    Rotated,
    SplitClasses,
    StreamSource,
    Vision,
)
from continual.data.split_classes import split_classes
from continual.data.splits import DataSplits, stratified_splits
from continual.data.stream import Scenario, Stream, Task
from continual.data.tensors import TensorData, pass_batch
from continual.data.vision import from_tensors, vision_dataset

__all__ = [
    "Avalanche", "DataSplits", "DatasetSource", "Digits", "IDXFolder", "Permuted", "Rotated",
    "Scenario", "SplitClasses", "Stream", "StreamSource", "Task", "TensorData", "Vision", "digits",
    "from_tensors", "idx_folder", "pass_batch", "permuted", "read_idx", "split_classes",
    "stratified_splits", "vision_dataset",
]
