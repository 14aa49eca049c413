"""One retrain and one scoring pass: the two things the simulator asks of a model."""

from __future__ import annotations

import time

import torch
from lightning.pytorch import Trainer
from torch import Tensor
from torch.utils.data import DataLoader, WeightedRandomSampler

from continual.data.lazy import LazyData
from continual.data.lazy_loading import ordered_batches
from continual.data.tensors import TensorData, pass_batch
from continual.fitting import fit_task, quiet_lightning, trainer_arguments
from continual.module import ContinualModule


def fit(module: ContinualModule, data: TensorData, weights: Tensor | None, *,
        trainer: dict | None, batch_size: int, seed: int) -> tuple[float, int]:
    """Train ``module`` on ``data`` (sampled by ``weights`` if given); seconds and samples."""
    generator = torch.Generator().manual_seed(seed)
    sampler = None if weights is None else WeightedRandomSampler(
        weights, num_samples=len(data), replacement=True, generator=generator)
    loader = DataLoader(data, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                        collate_fn=pass_batch, generator=None if sampler else generator)
    torch.manual_seed(seed)
    seen, start = module.samples_seen, time.perf_counter()
    with quiet_lightning():
        # The runner's fit: Ctrl-C surfaces as KeyboardInterrupt, not Lightning's exit(1).
        fit_task(Trainer(**trainer_arguments(trainer)), module, loader, None)
    return time.perf_counter() - start, module.samples_seen - seen


def correct(module: ContinualModule, data: TensorData | LazyData, batch_size: int = 1024
            ) -> Tensor:
    """Per-sample correctness ``[N]`` (bool) of ``module``'s predictions, in inference mode
    (lazy data: read batch by batch)."""
    was_training = module.training
    module.eval()
    out = []
    with torch.inference_mode():
        for x, y, _ in ordered_batches(data, 0, len(data), batch_size):
            x, y = x.to(module.device), y.to(module.device)
            out.append((module(x).argmax(dim=1) == y).cpu())
    module.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)
