"""DER++ (Buzzega et al. 2020): logit replay plus label replay on a second memory batch."""

from __future__ import annotations

import torch.nn.functional as F

from continual.buffers import SelectionPolicy, Storage
from continual.strategies.der import DER


class DERpp(DER):
    """Loss ``CE(new) + α MSE(f(x_m), z_m) + β CE(f(x_m'), y_m')`` with two memory batches.

    Args:
        alpha: weight α of logit matching.
        beta: weight β of the replayed labels.
        buffer_size, replay_batch_size, replay_ratio, seed, buffer_device, policy, storage: as in
            :class:`DER`.
    """

    def __init__(self, alpha: float = 0.1, beta: float = 0.5, buffer_size: int = 200,
                 replay_batch_size: int | None = None, replay_ratio: float = 1.0, seed: int = 0,
                 buffer_device: str | None = None, policy: SelectionPolicy | None = None,
                 storage: Storage = "auto") -> None:
        super().__init__(alpha, buffer_size, replay_batch_size, replay_ratio, seed,
                         buffer_device, policy, storage)
        self.beta = beta

    def replay_terms(self, module, n: int, device):
        bx, by, bt = self.replay(n, device, module)[:3]
        return super().replay_terms(module, n, device) + self.beta * F.cross_entropy(
            module(bx, bt), by)
