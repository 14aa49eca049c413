"""Accuracy of a module on every task's test set: one row of the accuracy matrix."""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassAccuracy

from continual.data.tensors import TensorData
from continual.module import ContinualModule


def evaluate(module: ContinualModule, datasets: list[TensorData], batch_size: int = 1024
             ) -> list[float]:
    """Accuracy on each dataset, in large slices under inference mode (no DataLoader)."""
    was_training = module.training
    module.eval()
    device = module.device
    accuracies = []
    with torch.inference_mode():
        for data in datasets:
            metric = MulticlassAccuracy(module.val_accuracy.num_classes, average="micro",
                                        validate_args=False).to(device)
            for start in range(0, len(data), batch_size):
                x, y, t = (v[start:start + batch_size].to(device) for v in (data.x, data.y, data.t))
                metric.update(module(x, t), y)
            accuracies.append(float(metric.compute()) if len(data) else float("nan"))
    module.train(was_training)
    return accuracies
