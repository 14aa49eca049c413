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
    SplitClasses,
    StreamSource,
)
from continual.data.split_classes import split_classes
from continual.data.splits import DataSplits, stratified_splits
from continual.data.stream import Scenario, Stream, Task
from continual.data.tensors import TensorData, pass_batch

__all__ = [
    "Avalanche", "DataSplits", "DatasetSource", "Digits", "IDXFolder", "Permuted", "Scenario",
    "SplitClasses", "Stream", "StreamSource", "Task", "TensorData", "digits", "idx_folder",
    "pass_batch", "permuted", "read_idx", "split_classes", "stratified_splits",
]
