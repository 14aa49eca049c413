"""Accuracy of a module on every task's test set: one row of the accuracy matrix."""

from __future__ import annotations

import torch

from continual.data.tensors import TensorData
from continual.distributed import shard, sum_over_ranks
from continual.module import ContinualModule


def evaluate(module: ContinualModule, datasets: list[TensorData], batch_size: int = 1024
             ) -> list[float]:
    """Accuracy on each dataset, in large slices under inference mode (no DataLoader).

    Under DDP each rank scores its shard of every dataset and the correct counts are summed
    over ranks: the accuracy on the full test set, the same on every rank (a collective).
    """
    was_training = module.training
    module.eval()
    device = module.device
    counts = torch.zeros(len(datasets), 2, dtype=torch.long, device=device)  # [D, (right, n)]
    with torch.inference_mode():
        for d, data in enumerate(datasets):
            part = shard(len(data))
            for start in range(part.start, part.stop, batch_size):
                stop = min(start + batch_size, part.stop)
                x, y, t = (v[start:stop].to(device) for v in (data.x, data.y, data.t))
                counts[d, 0] += (module(x, t).argmax(-1) == y).sum()
                counts[d, 1] += len(y)
    counts = sum_over_ranks(counts).cpu()
    module.train(was_training)
    return [right / n if n else float("nan") for right, n in counts.tolist()]
