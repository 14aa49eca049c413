"""Elastic Weight Consolidation (Kirkpatrick et al. 2017)."""

from __future__ import annotations

from functools import partial

from continual.data.stream import Stream
from continual.errors import ConfigError
from continual.strategies.importance import FisherMode, fisher_diagonal, trainable
from continual.strategies.regularizer import QuadraticRegularizer, measure_over_ranks


class EWC(QuadraticRegularizer):
    """Penalise moving weights that mattered for earlier tasks, one penalty per task.

    Loss: ``CE + λ Σ_k Σ_p F_kp (θ_p − θ*_kp)²`` with ``F_k`` the diagonal Fisher after task
    ``k``. The default Fisher is the **true** Fisher, the exact expectation over the model's
    predicted labels: it is the curvature EWC's derivation asks for, and unlike the empirical
    Fisher it does not shrink as the training loss goes to zero. The same λ is therefore not
    comparable across ``fisher`` modes (nor with implementations that sample labels).

    Args:
        lam: penalty strength λ.
        fisher: ``"true"`` or ``"empirical"`` (observed labels; cheaper by the class count).
        n_samples: training samples used for each Fisher (``None``: all).
        seed: seeds which samples are drawn.
    """

    def __init__(self, lam: float = 100.0, fisher: FisherMode = "true",
                 n_samples: int | None = 512, seed: int = 0) -> None:
        super().__init__(lam)
        if fisher not in ("true", "empirical"):
            raise ConfigError(f"fisher={fisher!r} is invalid; allowed: 'true' or 'empirical'")
        self.fisher, self.n_samples, self.seed = fisher, n_samples, seed

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        data = stream[index].train.sample(self.n_samples, self.seed + index)
        measure = partial(fisher_diagonal, module.net, class_mask=stream.head_mask(),
                          mode=self.fisher)
        self.consolidate(trainable(module.net), measure_over_ranks(measure, data))
