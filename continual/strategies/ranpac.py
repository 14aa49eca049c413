"""RanPAC (McDonnell et al. 2023): a frozen backbone, a random projection and a ridge
classifier updated in closed form."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.strategies.base import Strategy
from continual.strategies.features import penultimate


def ridge_classifier(gram: Tensor, targets: Tensor, ridge: float) -> Tensor:
    """``W = (G + λI)⁻¹ C`` ``[M, C]``: the ridge regression of one-hot labels on projected
    features ``H``, given ``G = HᵀH`` ``[M, M]`` and ``C = HᵀY`` ``[M, C]`` (float64)."""
    eye = torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
    return torch.linalg.solve(gram + ridge * eye, targets)


class RanPAC(Strategy):
    """Never train the backbone; classify ``h = ReLU(φ(x) R)`` by ridge regression.

    ``φ`` is what the net's last ``nn.Linear`` receives, ``R`` ``[D, M]`` a fixed Gaussian
    random projection. Each task adds to ``G = Σ hhᵀ`` and ``C = Σ h yᵀ``, and the classifier
    is re-solved (:func:`ridge_classifier`): after any task it equals the ridge classifier fit
    on all data seen at once, and the backbone never changes, so nothing is forgotten by
    construction. Defaults: ``M = 1000`` (the paper's 10000 is sized for 768-wide ViT
    features) and ``λ = 1`` fixed (the paper picks λ on held-out training data). As in
    :class:`~continual.strategies.simplecil.SimpleCIL`, ``adapt_first_task`` trains a net
    without pre-training on the first task before freezing it (the paper's first-session
    adaptation).

    Args:
        projection_dim: ``M``, the random projection's width.
        ridge: ``λ``.
        adapt_first_task: train the network on the first task, then freeze it.
        seed: seeds the projection.
    """

    def __init__(self, projection_dim: int = 1000, ridge: float = 1.0,
                 adapt_first_task: bool = False, seed: int = 0) -> None:
        if projection_dim < 1 or ridge <= 0:
            raise ConfigError(f"projection_dim={projection_dim}, ridge={ridge} are invalid; "
                              "allowed: projection_dim >= 1, ridge > 0")
        self.projection_dim, self.ridge = projection_dim, ridge
        self.adapt_first_task, self.seed = adapt_first_task, seed
        self._projection: Tensor | None = None  # [D, M]
        self._gram: Tensor | None = None  # [M, M] float64
        self._targets: Tensor | None = None  # [M, C] float64
        self._weights: Tensor | None = None  # [M, C]

    def train_data(self, stream: Stream, index: int) -> TensorData | None:
        return stream[index].train if self.adapt_first_task and index == 0 else None

    def project(self, features: Tensor) -> Tensor:
        return F.relu(features.float() @ self._projection.to(features.device))

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        data = stream[index].train
        feats = penultimate(module.net, data.x.to(module.device))
        if self._projection is None:
            g = torch.Generator().manual_seed(self.seed)
            self._projection = torch.randn(feats.shape[1], self.projection_dim, generator=g)
            self._gram = torch.zeros(self.projection_dim, self.projection_dim,
                                     dtype=torch.float64)
            self._targets = torch.zeros(self.projection_dim, stream.n_classes,
                                        dtype=torch.float64)
        h = self.project(feats).double().cpu()
        self._gram += h.T @ h
        self._targets += h.T @ F.one_hot(data.y.cpu(), stream.n_classes).double()
        self._weights = ridge_classifier(self._gram, self._targets, self.ridge).float()

    def predict(self, module, x, t, logits):
        if self._weights is None:
            return logits
        scores = self.project(penultimate(module.net, x)) @ self._weights.to(x.device)
        seen = self._targets.abs().sum(0) > 0
        scores = scores.masked_fill(~seen.to(x.device), torch.finfo(scores.dtype).min)
        return F.pad(scores, (0, logits.shape[1] - scores.shape[1]),
                     value=torch.finfo(scores.dtype).min).to(logits.dtype)

    def state_dict(self) -> dict[str, Any]:
        return {"projection": self._projection, "gram": self._gram, "targets": self._targets,
                "weights": self._weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._projection, self._gram = state["projection"], state["gram"]
        self._targets, self._weights = state["targets"], state["weights"]
