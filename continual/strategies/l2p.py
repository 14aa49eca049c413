"""L2P (Wang et al. 2022, "Learning to Prompt for Continual Learning", CVPR): a frozen
pre-trained ViT, a pool of prompts chosen per image by key-query matching."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from continual.data.stream import Stream
from continual.errors import ConfigError
from continual.strategies.base import Step, Strategy


def top_n_keys(query: Tensor, keys: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The ``n`` keys ``[M, D]`` most cosine-similar to each query ``[B, D]``: their indices
    ``[B, n]`` (most similar first) and similarities ``[B, n]``."""
    sims = F.normalize(query, dim=1) @ F.normalize(keys, dim=1).T  # [B, M]
    top = sims.topk(n, dim=1)
    return top.indices, top.values


class L2PPool(nn.Module):
    """``M`` learnable keys ``[M, D]`` and prompts ``[M, L, D]``; an image's prompt is the
    concatenation of the prompts of its top-``N`` keys, ``[B, N·L, D]``. The auxiliary loss is
    the matching surrogate ``mean_b Σ_selected (1 - cos(q_b, k))``: it pulls the chosen keys
    towards their queries (the query is detached, so only keys move)."""

    def __init__(self, dim: int, size: int = 10, length: int = 5, top_n: int = 5) -> None:
        super().__init__()
        if not 1 <= top_n <= size or length < 1:
            raise ConfigError(f"size={size}, length={length}, top_n={top_n} are invalid; "
                              "allowed: 1 <= top_n <= size, length >= 1")
        self.top_n = top_n
        self.keys = nn.Parameter(torch.empty(size, dim).uniform_(-1, 1))
        self.prompts = nn.Parameter(torch.empty(size, length, dim).uniform_(-1, 1))

    def forward(self, query: Tensor) -> tuple[Tensor, Tensor]:
        idx, sims = top_n_keys(query, self.keys, self.top_n)
        prompts = self.prompts[idx].flatten(1, 2)  # [B, N·L, D]
        return prompts, (1 - sims).sum(1).mean()


class PromptLearning(Strategy):
    """What L2P and CODA-Prompt share: train only the net's prompts, keys and head (a
    :class:`~continual.vit.PromptedViT`), add ``weight ×`` its auxiliary loss, and keep the
    classes apart as class-incremental L2P does: in training, logits of classes outside the
    current task are masked; at evaluation, those of classes not yet seen."""

    def __init__(self, weight: float) -> None:
        if weight < 0:
            raise ConfigError(f"weight={weight} is invalid; allowed: >= 0")
        self.weight = weight
        self._task_classes: Tensor | None = None  # [C] bool
        self._seen: Tensor | None = None  # [C] bool

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        from continual.vit import PromptedViT

        if not isinstance(module.net, PromptedViT):
            raise ConfigError(f"{type(self).__name__} needs model.net: PromptedViT, got "
                              f"{type(module.net).__name__}; allowed: continual.vit.PromptedViT")
        task = torch.zeros(stream.n_classes, dtype=torch.bool)
        task[stream[index].classes] = True
        self._task_classes = task
        self._seen = task if self._seen is None else self._seen | task

    def loss(self, module, step: Step, loss: Tensor) -> Tensor:
        mask = self._task_classes.to(step.logits.device)
        logits = step.logits.masked_fill(~mask, torch.finfo(step.logits.dtype).min)
        return F.cross_entropy(logits, step.y) + self.weight * module.net.aux_loss

    def predict(self, module, x, t, logits):
        if self._seen is None:
            return logits
        return logits.masked_fill(~self._seen.to(logits.device), torch.finfo(logits.dtype).min)

    def state_dict(self) -> dict[str, Any]:
        return {"task_classes": self._task_classes, "seen": self._seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._task_classes, self._seen = state["task_classes"], state["seen"]


class L2P(PromptLearning):
    """L2P: per image, the frozen ViT's [CLS] feature picks the top-``N`` of ``M`` prompt keys by
    cosine similarity; their prompts (length ``L``) are prepended to the patch tokens, and a
    linear head reads the prompted [CLS] output. The loss is the masked cross-entropy plus
    ``matching`` × the key-query surrogate. The net is
    ``PromptedViT(pool=L2PPool(dim, size=M, length=L, top_n=N))``; the paper's defaults, used
    here: ``M = 10``, ``L = 5``, ``N = 5``, ``matching = 0.1``. Left out: prompt tuning at the
    input only (no prefix variant) and no frequency-based diversity penalty at training.

    Args:
        matching: weight of the key-query matching loss.
    """

    def __init__(self, matching: float = 0.1) -> None:
        super().__init__(matching)
        self.matching = matching
