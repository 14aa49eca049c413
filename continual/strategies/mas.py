"""Memory Aware Synapses (Aljundi et al. 2018)."""

from __future__ import annotations

from continual.data.stream import Stream
from continual.distributed import mean_over_ranks, rank_share
from continual.strategies.importance import output_norm_importance, trainable
from continual.strategies.regularizer import QuadraticRegularizer


class MAS(QuadraticRegularizer):
    """Importance = sensitivity of the output norm, ``|∂‖f(x)‖²/∂θ|``, summed over tasks.

    Under DDP each rank measures its share of the samples and the shares are averaged: every
    rank holds the importance of all the samples.

    Args:
        lam: penalty strength λ.
        n_samples: training samples used per task (``None``: all).
        seed: seeds which samples are drawn.
    """

    def __init__(self, lam: float = 1.0, n_samples: int | None = 512, seed: int = 0) -> None:
        super().__init__(lam, merge=True, decay=1.0)
        self.n_samples, self.seed = n_samples, seed

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        data = stream[index].train.sample(self.n_samples, self.seed + index)
        part = rank_share(data)  # under DDP each rank its share, then the mean over all
        omega = output_norm_importance(module.net, part, module.class_mask)
        importance = mean_over_ranks(omega, len(part))
        self.consolidate(trainable(module.net), importance)
