"""Online EWC (Schwarz et al. 2018): one running Fisher, memory constant in the task count."""

from __future__ import annotations

from continual.errors import ConfigError
from continual.strategies.ewc import EWC
from continual.strategies.importance import FisherMode


class OnlineEWC(EWC):
    """EWC with ``F ← γ F + F_new`` and the anchor moved to the latest weights.

    Args:
        lam: penalty strength λ.
        gamma: decay γ of older Fisher information (1 keeps it all).
        fisher, n_samples, seed: as in :class:`EWC`.
    """

    def __init__(self, lam: float = 100.0, gamma: float = 0.9, fisher: FisherMode = "sampled",
                 n_samples: int | None = 512, seed: int = 0) -> None:
        super().__init__(lam, fisher, n_samples, seed)
        self.gamma = gamma
        self._merge, self._decay = True, gamma
        if not 0.0 <= gamma <= 1.0:
            raise ConfigError(f"gamma={gamma} is invalid; allowed: 0 <= gamma <= 1")
