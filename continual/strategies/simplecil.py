"""SimpleCIL (Zhou et al. 2024, "Revisiting Class-Incremental Learning with Pre-Trained
Models"): a frozen backbone and a prototype classifier."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.strategies.base import Strategy
from continual.strategies.features import penultimate, scores_as_logits


def cosine_scores(features: Tensor, sums: Tensor, counts: Tensor) -> Tensor:
    """Cosine similarity ``[B, C]`` of ``features`` to each class's mean feature (its
    prototype, ``sums / counts``); classes with no samples at the lowest value."""
    scores = F.normalize(features.float(), dim=1) @ F.normalize(sums.float(), dim=1).T
    return scores.masked_fill(counts == 0, torch.finfo(scores.dtype).min)


class SimpleCIL(Strategy):
    """Never train the backbone; classify by cosine similarity to class prototypes.

    A prototype is the mean of a class's penultimate features (what the net's last
    ``nn.Linear`` receives), accumulated over every task that holds the class; the head is not
    used. The backbone never changes, so old prototypes never do: no forgetting by
    construction. The paper's backbone is pre-trained (load its weights into ``model.net``);
    for a net without pre-training, ``adapt_first_task`` fits it on the first task first, as
    the paper's APER variant adapts it, and freezes it after.

    Args:
        adapt_first_task: train the network on the first task, then freeze it (default: no
            training at all, as in the paper).
    """

    def __init__(self, adapt_first_task: bool = False) -> None:
        self.adapt_first_task = adapt_first_task
        self._sums: Tensor | None = None  # [C, D]
        self._counts: Tensor | None = None  # [C]

    def train_data(self, stream: Stream, index: int) -> TensorData | None:
        return stream[index].train if self.adapt_first_task and index == 0 else None

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        data = stream[index].train
        feats = penultimate(module.net, data.x.to(module.device)).float()
        y = data.y.to(feats.device)
        if self._sums is None:
            self._sums = feats.new_zeros(stream.n_classes, feats.shape[1])
            self._counts = torch.zeros(stream.n_classes, dtype=torch.long, device=feats.device)
        self._sums = self._sums.to(feats.device).index_add_(0, y, feats)
        self._counts = self._counts.to(feats.device) + torch.bincount(y, minlength=len(
            self._counts))

    def predict(self, module, x, t, logits):
        if self._sums is None:
            return logits
        scores = cosine_scores(penultimate(module.net, x), self._sums.to(x.device),
                               self._counts.to(x.device))
        return scores_as_logits(scores, logits)

    def state_dict(self) -> dict[str, Any]:
        return {"sums": self._sums, "counts": self._counts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._sums, self._counts = state["sums"], state["counts"]
