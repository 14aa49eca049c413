"""Accuracy of a module on every task's test set: one row of the accuracy matrix."""

from __future__ import annotations

import torch
from torch import Tensor

from continual.data.lazy import LazyData
from continual.data.lazy_loading import ordered_batches
from continual.data.tensors import TensorData
from continual.distributed import shard, sum_over_ranks
from continual.module import ContinualModule


def evaluate(module: ContinualModule, datasets: list[TensorData | LazyData],
             batch_size: int = 1024) -> list[float]:
    """Accuracy on each dataset, in large slices under inference mode (lazy data: batches
    read by its DataLoader workers).

    Under DDP each rank scores its shard of every dataset and the correct counts are summed
    over ranks: the accuracy on the full test set, the same on every rank (a collective).
    """
    return evaluate_rows(module, datasets, batch_size)[0]


def evaluate_rows(module: ContinualModule, datasets: list[TensorData | LazyData],
                  batch_size: int = 1024, class_mask: Tensor | None = None
                  ) -> tuple[list[float], list[float] | None]:
    """:func:`evaluate`'s row and, with ``class_mask`` (``[T, C]`` bool, ``Stream.class_mask``),
    the task-incremental row read from the same logits.

    The second row restricts each sample's prediction to its own task's classes (the task id
    of every test sample is known), as if each task had a head of its own: a
    class-incremental run reports both, as mammoth does, for the cost of one forward pass.
    ``None`` without ``class_mask``.
    """
    was_training = module.training
    module.eval()
    device = module.device
    mask = None if class_mask is None else class_mask.to(device)
    counts = torch.zeros(len(datasets), 3, dtype=torch.long, device=device)  # [D, (cil, til, n)]
    with torch.inference_mode():
        for d, data in enumerate(datasets):
            part = shard(len(data))
            for batch in ordered_batches(data, part.start, part.stop, batch_size):
                x, y, t = (v.to(device) for v in batch)
                logits = module(x, t)  # [B, C]
                counts[d, 0] += (logits.argmax(-1) == y).sum()
                if mask is not None:
                    counts[d, 1] += (within_task(logits, mask, t).argmax(-1) == y).sum()
                counts[d, 2] += len(y)
    counts = sum_over_ranks(counts).cpu()
    module.train(was_training)
    rows = [[right / n if n else float("nan") for right, n in counts[:, [k, 2]].tolist()]
            for k in (0, 1)]
    return rows[0], rows[1] if mask is not None else None


def within_task(logits: Tensor, class_mask: Tensor, task_ids: Tensor) -> Tensor:
    """``logits`` [B, C] with every class outside each sample's task at the lowest value.

    Columns the mask does not cover (a net with more outputs than the stream has classes)
    count as outside every task.
    """
    mask = class_mask[task_ids]  # [B, C_stream]
    width = logits.shape[-1]
    if mask.shape[-1] < width:
        mask = torch.nn.functional.pad(mask, (0, width - mask.shape[-1]), value=False)
    return logits.masked_fill(~mask[:, :width], torch.finfo(logits.dtype).min)
