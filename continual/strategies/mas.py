"""Memory Aware Synapses (Aljundi et al. 2018)."""

from __future__ import annotations

from functools import partial

from continual.data.stream import Stream
from continual.strategies.importance import output_norm_importance, trainable
from continual.strategies.regularizer import QuadraticRegularizer, measure_over_ranks


class MAS(QuadraticRegularizer):
    """Importance = sensitivity of the output norm, ``|∂‖f(x)‖²/∂θ|``, summed over tasks.

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
        measure = partial(output_norm_importance, module.net, class_mask=stream.head_mask())
        self.consolidate(trainable(module.net), measure_over_ranks(measure, data))
