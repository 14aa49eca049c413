"""CODA-Prompt (Smith et al. 2023, "CODA-Prompt: COntinual Decomposed Attention-based
Prompting for Rehearsal-Free Continual Learning", CVPR): a prompt assembled per image as an
attention-weighted sum of learnable components."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from continual.data.stream import Stream
from continual.errors import ConfigError
from continual.strategies.l2p import PromptLearning


def coda_prompt(query: Tensor, keys: Tensor, attention: Tensor, components: Tensor) -> Tensor:
    """``p_b = Σ_m α_bm P_m`` ``[B, L, D]`` with ``α_bm = cos(q_b ⊙ A_m, K_m)``, for queries
    ``[B, D]``, keys and attention vectors ``[M, D]`` and components ``[M, L, D]``."""
    attended = F.normalize(query[:, None, :] * attention[None], dim=2)  # [B, M, D]
    alpha = (attended * F.normalize(keys, dim=1)[None]).sum(2)  # [B, M]
    return torch.einsum("bm,mld->bld", alpha, components)


def orthogonality(x: Tensor) -> Tensor:
    """``‖X Xᵀ - I‖²_F`` for the rows of ``x`` ``[M, ...]`` (flattened)."""
    flat = x.flatten(1)
    return (flat @ flat.T - torch.eye(len(flat), device=x.device, dtype=x.dtype)).pow(2).sum()


class CodaPool(nn.Module):
    """``n_tasks × per_task`` components ``[L, D]``, keys and attention vectors ``[D]``; task
    ``t`` uses the first ``(t + 1) · per_task`` of them and trains only its own (earlier ones
    are detached, so their gradients are ``None`` and no optimizer moves them). The auxiliary
    loss is the orthogonality regulariser on keys, attention vectors and components in use."""

    def __init__(self, dim: int, n_tasks: int = 10, per_task: int = 10, length: int = 8) -> None:
        super().__init__()
        if n_tasks < 1 or per_task < 1 or length < 1:
            raise ConfigError(f"n_tasks={n_tasks}, per_task={per_task}, length={length} are "
                              "invalid; allowed: each >= 1")

        def chunks(*shape: int) -> nn.ParameterList:
            return nn.ParameterList(nn.Parameter(torch.empty(per_task, *shape).uniform_(-1, 1))
                                    for _ in range(n_tasks))

        self.keys, self.attention, self.components = chunks(dim), chunks(dim), chunks(length, dim)
        self.register_buffer("task", torch.zeros((), dtype=torch.long))

    def start_task(self, index: int) -> None:
        if index >= len(self.keys):
            raise ConfigError(f"task {index} needs components, the pool has {len(self.keys)} "
                              "tasks' worth; allowed: CodaPool(n_tasks >= the stream's tasks)")
        self.task.fill_(index)

    def in_use(self) -> tuple[Tensor, Tensor, Tensor]:
        """Keys, attention vectors and components of tasks ``0..task``, earlier ones detached."""
        t = int(self.task)
        return tuple(torch.cat([p.detach() for p in chunk[:t]] + [chunk[t]])
                     for chunk in (self.keys, self.attention, self.components))

    def forward(self, query: Tensor) -> tuple[Tensor, Tensor]:
        keys, attention, components = self.in_use()
        aux = orthogonality(keys) + orthogonality(attention) + orthogonality(components)
        return coda_prompt(query, keys, attention, components), aux


class CodaPrompt(PromptLearning):
    """CODA-Prompt: the frozen ViT's [CLS] feature ``q`` weighs each component ``P_m`` by
    ``cos(q ⊙ A_m, K_m)``; the weighted sum is the image's prompt, prepended to the patch
    tokens, and a linear head reads the prompted [CLS] output. Each task adds ``per_task`` new
    components (with keys and attention vectors) and freezes the earlier ones; the loss is the
    masked cross-entropy plus ``ortho`` × the orthogonality regulariser. The net is
    ``PromptedViT(pool=CodaPool(dim, n_tasks, per_task=10, length=8))`` (the paper's 100
    components over 10 tasks, length 8); ``ortho = 0.1`` is this package's default. Unlike
    the paper: prompts enter at the input (prompt tuning, not prefix tuning in layers 0-4),
    and new components start uniform in [-1, 1], not Gram-Schmidt orthogonalised.

    Args:
        ortho: weight of the orthogonality regulariser.
    """

    def __init__(self, ortho: float = 0.1) -> None:
        super().__init__(ortho)
        self.ortho = ortho

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        super().on_task_start(module, stream, index)
        if not isinstance(module.net.pool, CodaPool):
            raise ConfigError(f"CodaPrompt needs model.net.pool: CodaPool, got "
                              f"{type(module.net.pool).__name__}; allowed: CodaPool")
        module.net.pool.start_task(index)
