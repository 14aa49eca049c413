"""Elastic Weight Consolidation (Kirkpatrick et al. 2017)."""

from __future__ import annotations

import torch

from continual.data.stream import Stream
from continual.errors import ConfigError
from continual.strategies.importance import (
    FISHER_MODES,
    FisherMode,
    fisher_diagonal,
    trainable,
)
from continual.strategies.regularizer import QuadraticRegularizer, measure_over_ranks


class EWC(QuadraticRegularizer):
    """Penalise moving weights that mattered for earlier tasks, one penalty per task.

    Loss: ``CE + λ Σ_k Σ_p F_kp (θ_p − θ*_kp)²`` with ``F_k`` the diagonal Fisher after task
    ``k``. The default Fisher (``"sampled"``) estimates the **true** Fisher, the expectation
    over the model's own predicted labels, by one label drawn from ``p(·|x)`` per sample: an
    unbiased estimate at one backward pass per sample, where the exact expectation
    (``"true"``) takes one per class (an EWC run on Split-MNIST: 1.5× a plain fine-tuning
    loop, against 1.0× sampled; ``experiments/benchmarks/importance.md``). The true Fisher is
    the curvature EWC's derivation asks for and, unlike the empirical Fisher
    (``"empirical"``: the observed labels), does not shrink as the training loss goes to zero.
    λ's meaning depends on the estimate: "sampled" and "true" agree in expectation (so one λ
    serves both), "empirical" is smaller on a well-fit task and needs a larger λ for the same
    pull.

    Args:
        lam: penalty strength λ.
        fisher: ``"sampled"``, ``"true"`` (exact, one backward pass per class) or
            ``"empirical"``.
        n_samples: training samples used for each Fisher (``None``: all).
        seed: seeds which samples are drawn and, for ``"sampled"``, their labels.
    """

    def __init__(self, lam: float = 100.0, fisher: FisherMode = "sampled",
                 n_samples: int | None = 512, seed: int = 0) -> None:
        super().__init__(lam)
        if fisher not in FISHER_MODES:
            raise ConfigError(f"fisher={fisher!r} is invalid; allowed: "
                              + ", ".join(repr(m) for m in FISHER_MODES))
        self.fisher, self.n_samples, self.seed = fisher, n_samples, seed

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        data = stream[index].train.sample(self.n_samples, self.seed + index)
        # The labels "sampled" draws, one uniform a sample, drawn for the whole set: every
        # data-parallel rank then draws its share's labels as a single process would.
        uniforms = torch.rand(len(data), generator=torch.Generator().manual_seed(
            self.seed + index))

        def measure(part, u):
            return fisher_diagonal(module.net, part, stream.head_mask(), self.fisher,
                                   uniforms=u)

        self.consolidate(trainable(module.net), measure_over_ranks(measure, data, uniforms))
