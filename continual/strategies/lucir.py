"""LUCIR (Hou et al. 2019, "Learning a Unified Classifier Incrementally via Rebalancing")."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from continual.buffers import Herding
from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.strategies.features import last_linear, penultimate
from continual.strategies.rehearsal import Rehearsal
from continual.strategies.snapshot import Snapshot


def cosine_logits(features: Tensor, weight: Tensor, scale: float) -> Tensor:
    """The cosine-normalised classifier: ``σ ⟨f̄, w̄_c⟩`` ``[B, C]`` for features ``[B, D]``
    and class weights ``[C, D]`` (``x̄ = x / ‖x‖``)."""
    return scale * F.normalize(features, dim=1) @ F.normalize(weight, dim=1).T


def margin_ranking(cosines: Tensor, y: Tensor, old: Tensor, new: Tensor, margin: float,
                   k: int) -> Tensor:
    """Inter-class separation (the paper's Eq. 7): for each sample of an ``old`` class
    (``old`` ``[B]`` bool), ``max(0, m − cos_y + cos_j)`` for its ``k`` highest ``new``-class
    cosines ``j``, averaged over those pairs; ``cosines`` ``[B, C]`` unscaled."""
    if not old.any() or not len(new):
        return cosines.new_zeros(())
    own = cosines[old].gather(1, y[old, None])  # [B_old, 1]
    hard = cosines[old][:, new].topk(min(k, len(new)), dim=1).values  # [B_old, k]
    return F.relu(margin - own + hard).mean()


def features_and_logits(net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """``net(x)`` and what its head received, ``[B, D]``, in one forward pass with gradients."""
    captured: list[Tensor] = []
    handle = last_linear(net).register_forward_pre_hook(
        lambda _, args: captured.append(args[0].flatten(1)))
    try:
        logits = net(x)
    finally:
        handle.remove()
    return captured[0], logits


class LUCIR(Rehearsal):
    """Herding exemplars, a cosine-normalised classifier, feature distillation and a margin
    ranking loss on the old classes' exemplars.

    * Classifier: the net's last ``nn.Linear`` weights used as class embeddings,
      ``σ cos(f, w_c)`` (:func:`cosine_logits`); its bias is unused. σ is fixed here (the
      paper learns it; the module's optimizer trains the net's parameters only).
    * Loss: ``CE(σ cos) + λ (1 − cos(f*, f)) + λ_mr L_mr`` with ``f*`` the previous network's
      features (less-forget), ``λ = λ_base √(n_new / n_old)`` (classes), and
      :func:`margin_ranking` on the batch's exemplars against the ``k`` hardest new classes.
    * Memory: ``buffer_size`` exemplars picked by herding on the normalised features, as in
      iCaRL; the training set is the new task plus the memory. Prediction: the cosine
      classifier (the paper's "CNN"), over the classes seen.

    Defaults: the paper's λ_base = 5, m = 0.5, K = 2, λ_mr = 1; σ = 16 (fixed); a 200-item
    memory as the other rehearsal configs here. Left out: the paper's class-balanced
    fine-tuning and weight imprinting of new classes.

    Args:
        buffer_size: total exemplars.
        scale: σ of the cosine classifier.
        lam_base: λ_base of the less-forget constraint.
        margin, k, lam_mr: the margin ranking loss's m, K and weight.
        seed: seeds the memory.
    """

    def __init__(self, buffer_size: int = 200, scale: float = 16.0, lam_base: float = 5.0,
                 margin: float = 0.5, k: int = 2, lam_mr: float = 1.0, seed: int = 0,
                 buffer_device: str | None = None) -> None:
        if scale <= 0 or k < 1:
            raise ConfigError(f"scale={scale}, k={k} are invalid; allowed: scale > 0, k >= 1")
        super().__init__(buffer_size, policy=Herding(), seed=seed, buffer_device=buffer_device)
        self.scale, self.lam_base, self.margin, self.k, self.lam_mr = (
            scale, lam_base, margin, k, lam_mr)
        self._teacher = Snapshot()
        self._old_classes: list[int] = []
        self._new_classes: list[int] = []

    def train_data(self, stream: Stream, index: int) -> TensorData | None:
        return self.with_memory(stream[index].train)

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        super().on_task_start(module, stream, index)  # lazy tasks' data for the memory
        self._new_classes = [c for c in stream[index].classes if c not in self._old_classes]

    def _seen(self, n_classes: int, device: torch.device) -> Tensor:
        seen = torch.zeros(n_classes, dtype=torch.bool, device=device)
        seen[self._old_classes + self._new_classes] = True
        return seen

    def loss(self, module, step, loss):
        feats, _ = features_and_logits(module.net, step.inputs)
        cosines = cosine_logits(feats, last_linear(module.net).weight, 1.0)  # [B, C]
        logits = module.masked(self.scale * cosines, step.t).masked_fill(
            ~self._seen(cosines.shape[1], cosines.device), torch.finfo(cosines.dtype).min)
        total = F.cross_entropy(logits, step.y)
        if not self._teacher.taken or not self._new_classes:
            return total
        with torch.no_grad():
            old_feats, _ = features_and_logits(self._teacher.net(module.net), step.inputs)
        lam = self.lam_base * math.sqrt(len(self._new_classes) / len(self._old_classes))
        forget = (1 - F.cosine_similarity(feats, old_feats, dim=1)).mean()
        old = torch.isin(step.y, torch.tensor(self._old_classes, device=step.y.device))
        ranking = margin_ranking(cosines, step.y, old, torch.tensor(
            self._new_classes, device=step.y.device), self.margin, self.k)
        return total + lam * forget + self.lam_mr * ranking

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        data = stream[index].train
        feats = penultimate(module.net, data.x.to(module.device))
        self.buffer.add(data.x, data.y, data.t, keys=self.buffer.policy.keys(
            F.normalize(feats.float(), dim=1), data.y))
        self._old_classes = sorted(set(self._old_classes) | set(self._new_classes))
        self._teacher.take(module.net)

    def predict(self, module, x, t, logits):
        if not self._old_classes and not self._new_classes:
            return logits
        weight = last_linear(module.net).weight
        scores = cosine_logits(penultimate(module.net, x), weight, self.scale).to(logits.dtype)
        return scores.masked_fill(~self._seen(len(weight), scores.device),
                                  torch.finfo(scores.dtype).min)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "old_state": self._teacher.weights,
                "old_classes": self._old_classes, "new_classes": self._new_classes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._teacher.load(state["old_state"])
        self._old_classes, self._new_classes = state["old_classes"], state["new_classes"]
