"""FeCAM (Goswami et al. 2023, "FeCAM: Exploiting the Heterogeneity of Class Distributions in
Exemplar-Free Continual Learning", NeurIPS): a frozen backbone, per-class means and
covariances, and the Mahalanobis distance."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.strategies.base import Strategy
from continual.strategies.features import penultimate, scores_as_logits


def tukey(features: Tensor, beta: float) -> Tensor:
    """Tukey's ladder of powers, ``x^β`` (``log x`` at β = 0): makes skewed non-negative
    (post-ReLU) features closer to Gaussian, which the Mahalanobis distance assumes."""
    features = features.clamp_min(0)
    return features.clamp_min(1e-12).log() if beta == 0 else features.pow(beta)


def shrunk_correlation(cov: Tensor, diag_shrink: float, off_shrink: float) -> Tensor:
    """``Σ + γ₁ V₁ I + γ₂ V₂ (1 − I)`` (``V₁``, ``V₂``: means of the diagonal and of the
    off-diagonal entries), then scaled to unit diagonal, per class ``[C, D, D]``: a few
    samples in many dimensions give a singular ``Σ``; unit diagonals put every class's
    distance on one scale."""
    d = cov.shape[-1]
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    v1 = cov.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None]
    v2 = ((cov * (1 - eye)).sum((-2, -1)) / max(d * d - d, 1))[:, None, None]
    cov = cov + diag_shrink * v1 * eye + off_shrink * v2 * (1 - eye)
    sd = cov.diagonal(dim1=-2, dim2=-1).sqrt()
    return cov / (sd[:, :, None] * sd[:, None, :])


def mahalanobis(z: Tensor, means: Tensor, precisions: Tensor) -> Tensor:
    """Squared distances ``[B, C]`` of L2-normalised ``z`` ``[B, D]`` to each L2-normalised
    class mean ``[C, D]`` under the class's precision matrix ``[C, D, D]``."""
    diff = F.normalize(z, dim=1)[:, None, :] - F.normalize(means, dim=1)[None]  # [B, C, D]
    return torch.einsum("bcd,cde,bce->bc", diff, precisions, diff)


class FeCAM(Strategy):
    """Train the backbone on the first task only, then classify by the smallest Mahalanobis
    distance to each class's Gaussian of Tukey-transformed penultimate features.

    Each task adds its samples to per-class sums, outer-product sums and counts (float64), so a
    class's statistics never change once its data has been seen and the backbone is frozen:
    zero forgetting by construction, as in :class:`~continual.strategies.simplecil.SimpleCIL`
    (which uses one shared metric, the cosine). The head is not used after the first task.
    Defaults as in the paper: ``β = 0.5``, shrinkage ``γ₁ = γ₂ = 1``, covariances normalised
    to unit diagonal. Memory is ``C·D²`` floats (D = the head's input width).

    Args:
        beta: Tukey's exponent β (0: log).
        diag_shrink, off_shrink: γ₁ and γ₂.
        adapt_first_task: train the network on the first task, then freeze it (``False``:
            a pre-trained backbone, never trained).
    """

    def __init__(self, beta: float = 0.5, diag_shrink: float = 1.0, off_shrink: float = 1.0,
                 adapt_first_task: bool = True) -> None:
        if beta < 0 or not 0 <= off_shrink <= diag_shrink or diag_shrink <= 0:
            raise ConfigError(f"beta={beta}, diag_shrink={diag_shrink}, off_shrink={off_shrink} "
                              "are invalid; allowed: beta >= 0, 0 <= off_shrink <= diag_shrink, "
                              "diag_shrink > 0 (keeps the shrunk covariance invertible)")
        self.beta, self.diag_shrink, self.off_shrink = beta, diag_shrink, off_shrink
        self.adapt_first_task = adapt_first_task
        self._sums: Tensor | None = None  # [C, D] float64
        self._outer: Tensor | None = None  # [C, D, D] float64: Σ z zᵀ per class
        self._counts: Tensor | None = None  # [C]
        self._means: Tensor | None = None  # [K, D] for the K classes seen (0..K-1 contiguous)
        self._precisions: Tensor | None = None  # [K, D, D]

    def train_data(self, stream: Stream, index: int) -> TensorData | None:
        return stream[index].train if self.adapt_first_task and index == 0 else None

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        data = stream[index].train
        z = tukey(penultimate(module.net, data.x.to(module.device)).double(), self.beta).cpu()
        y = data.y.cpu()
        if self._sums is None:
            n, d = stream.n_classes, z.shape[1]
            self._sums, self._outer = z.new_zeros(n, d), z.new_zeros(n, d, d)
            self._counts = torch.zeros(n, dtype=torch.long)
        self._sums.index_add_(0, y, z)
        self._outer.index_add_(0, y, z[:, :, None] * z[:, None, :])
        self._counts += torch.bincount(y, minlength=len(self._counts))
        self._means, self._precisions = self.gaussians()

    def gaussians(self) -> tuple[Tensor, Tensor]:
        """Means ``[K, D]`` and precision matrices ``[K, D, D]`` of the classes up to the last
        seen (a class not seen yet gets the identity and a zero mean)."""
        k = int(self._counts.nonzero().max()) + 1
        n = self._counts[:k].double()[:, None]
        means = self._sums[:k] / n.clamp_min(1)
        cov = (self._outer[:k] - n[:, :, None] * means[:, :, None] * means[:, None, :]) / \
            (n[:, :, None] - 1).clamp_min(1)  # unbiased
        cov = torch.where((n[:, :, None] > 1), cov, torch.eye(cov.shape[-1], dtype=cov.dtype))
        precisions = torch.linalg.inv(shrunk_correlation(cov, self.diag_shrink, self.off_shrink))
        return means.float(), precisions.float()

    def predict(self, module, x, t, logits):
        if self._means is None:
            return logits
        z = tukey(penultimate(module.net, x).float(), self.beta)
        distances = mahalanobis(z, self._means.to(x.device), self._precisions.to(x.device))
        scores = (-distances).masked_fill((self._counts[: len(self._means)] == 0).to(x.device),
                                          torch.finfo(distances.dtype).min)
        return scores_as_logits(scores, logits)

    def state_dict(self) -> dict[str, Any]:
        return {"sums": self._sums, "outer": self._outer, "counts": self._counts,
                "means": self._means, "precisions": self._precisions}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._sums, self._outer, self._counts = state["sums"], state["outer"], state["counts"]
        self._means, self._precisions = state["means"], state["precisions"]
