"""iCaRL (Rebuffi et al. 2017): herding exemplars, distillation, nearest-mean-of-exemplars."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from continual.buffers import Herding
from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.strategies.features import penultimate, scores_as_logits
from continual.strategies.rehearsal import Rehearsal
from continual.strategies.snapshot import Snapshot


def nearest_mean_scores(features: Tensor, means: Tensor, known: Tensor) -> Tensor:
    """``−‖φ(x) − μ_c‖`` ``[B, C]`` on L2-normalised features; classes not ``known`` (no
    exemplars) at the lowest value. ``means`` ``[C, D]`` are normalised class means."""
    scores = -torch.cdist(F.normalize(features.float(), dim=1), means.float())
    return scores.masked_fill(~known, torch.finfo(scores.dtype).min)


def class_means(features: Tensor, y: Tensor, n_classes: int) -> tuple[Tensor, Tensor]:
    """Normalised means of the normalised features of each class, ``[C, D]``, and which
    classes have any sample ``[C]``."""
    f = F.normalize(features.float(), dim=1)
    sums = torch.zeros(n_classes, f.shape[1], device=f.device).index_add_(0, y.to(f.device), f)
    counts = torch.bincount(y, minlength=n_classes).to(f.device)
    return F.normalize(sums, dim=1), counts > 0


class ICaRL(Rehearsal):
    """Train on the new task plus the exemplars with iCaRL's loss; classify by the nearest
    mean of exemplars.

    * Loss: binary cross-entropy over the classes seen so far, the targets one-hot for the
      new task's classes and the previous network's sigmoid outputs for the older ones
      (classification and distillation in one term, summed over classes, averaged over the
      batch); the cross-entropy the module passes in is not used.
    * Memory: ``buffer_size`` exemplars shared equally among classes seen, each class's picked
      by herding on the normalised penultimate features at the end of its task; a class's
      share shrinks by dropping its last picks (:class:`~continual.buffers.Herding`).
    * Evaluation: nearest class mean of the exemplars' normalised features
      (:func:`nearest_mean_scores`), the means computed at each task's end; within a task's
      fit (validation) the network's head answers. The features are what the net's last
      ``nn.Linear`` receives (:func:`~continual.strategies.features.penultimate`).

    Defaults: a 200-exemplar memory, as the other rehearsal configs here (the paper: 2000 on
    CIFAR-100). The paper's data augmentation (and its flipped images in the class means) is
    the stream's ``train_transform``; distillation targets are computed on the stored inputs.

    Args:
        buffer_size: total exemplars K.
        seed: seeds the memory.
        buffer_device: where to keep the exemplars.
    """

    def __init__(self, buffer_size: int = 200, seed: int = 0,
                 buffer_device: str | None = None) -> None:
        super().__init__(buffer_size, policy=Herding(), seed=seed, buffer_device=buffer_device)
        self._teacher = Snapshot()
        self._old_classes: list[int] = []
        self._new_classes: list[int] = []
        self._means: Tensor | None = None  # [C, D], current only between a task's end and fit
        self._known: Tensor | None = None  # [C] bool

    def train_data(self, stream: Stream, index: int) -> TensorData | None:
        return self.with_memory(stream[index].train)

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        super().on_task_start(module, stream, index)  # lazy tasks' data for the memory
        self._new_classes = list(stream[index].classes)

    def loss(self, module, step, loss):
        seen = torch.tensor(self._old_classes + self._new_classes, device=step.y.device)
        targets = F.one_hot(step.y, step.raw_logits.shape[1]).to(step.raw_logits.dtype)
        if self._teacher.taken:
            old = torch.tensor(self._old_classes, device=step.y.device)
            with torch.no_grad():
                targets[:, old] = torch.sigmoid(self._teacher.net(module.net)(step.inputs)[:, old])
        bce = F.binary_cross_entropy_with_logits(step.raw_logits[:, seen], targets[:, seen],
                                                 reduction="none")
        return bce.sum(1).mean()

    def after_step(self, module, step) -> None:
        self._means = self._known = None  # the net moved: the means are stale

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        data = stream[index].train
        feats = penultimate(module.net, data.x.to(module.device))
        self.buffer.add(data.x, data.y, data.t, keys=self.buffer.policy.keys(
            F.normalize(feats.float(), dim=1), data.y))
        memory = self.buffer.data()
        self._means, self._known = class_means(
            penultimate(module.net, memory.x.to(module.device)), memory.y.to(module.device),
            stream.n_classes)
        self._old_classes = sorted(set(self._old_classes) | set(self._new_classes))
        self._teacher.take(module.net)

    def predict(self, module, x, t, logits):
        if self._means is None:
            return logits
        scores = nearest_mean_scores(penultimate(module.net, x), self._means.to(x.device),
                                     self._known.to(x.device))
        return scores_as_logits(scores, logits)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "old_state": self._teacher.weights,
                "old_classes": self._old_classes, "new_classes": self._new_classes,
                "means": self._means, "known": self._known}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._teacher.load(state["old_state"])
        self._old_classes, self._new_classes = state["old_classes"], state["new_classes"]
        self._means, self._known = state["means"], state["known"]
