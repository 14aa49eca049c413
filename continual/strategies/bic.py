"""Bias Correction, BiC (Wu et al. 2019, "Large Scale Incremental Learning")."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from continual.buffers import ClassBalanced
from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.strategies.lwf import distillation_loss
from continual.strategies.rehearsal import Rehearsal
from continual.strategies.snapshot import Snapshot

Bias = tuple[float, float, list[int]]  # α, β and the classes they correct


def corrected(logits: Tensor, bias: Bias | None) -> Tensor:
    """``logits`` with ``α z + β`` on the bias's classes (the paper's Eq. 4); others as given."""
    if bias is None:
        return logits
    alpha, beta, classes = bias
    out = logits.clone()
    out[:, classes] = alpha * logits[:, classes] + beta
    return out


def fit_bias(logits: Tensor, y: Tensor, new: Tensor, ridge: float = 0.0, max_iter: int = 100
             ) -> tuple[float, float]:
    """The ``(α, β)`` minimising the cross-entropy of ``logits`` ``[N, K]`` with ``α z + β`` on
    the ``new`` columns ``[K]`` (bool), labels ``y`` in ``0..K-1``, plus
    ``ridge · ((α − 1)² + β²)``. The objective is convex in ``(α, β)`` (strictly, with a
    ridge); L-BFGS in float64 finds its minimum."""
    z, y, new = logits.detach().double().cpu(), y.cpu(), new.cpu()
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS([params], lr=1.0, max_iter=max_iter, tolerance_grad=1e-12,
                               tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        solver.zero_grad()
        loss = F.cross_entropy(torch.where(new, params[0] * z + params[1], z), y) + ridge * (
            (params[0] - 1).square() + params[1].square())
        loss.backward()
        return loss

    solver.step(closure)
    return float(params[0].detach()), float(params[1].detach())


def balanced_holdout(y: Tensor, per_class: int, seed: int) -> Tensor:
    """A bool mask ``[N]`` picking ``per_class`` random items of each class in ``y`` (all of a
    class that has fewer)."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    by_class = order[torch.sort(y[order], stable=True).indices]  # classes in blocks, shuffled
    first = torch.searchsorted(y[by_class], y[by_class])  # each block's start
    rank = torch.arange(len(y)) - first
    mask = torch.zeros(len(y), dtype=torch.bool)
    mask[by_class[rank < per_class]] = True
    return mask


class BiC(Rehearsal):
    """Train on the new task plus a class-balanced memory with distillation; then fit a
    two-parameter bias correction of the new classes' logits on a held-out balanced split.

    * Loss: ``(1 − λ) CE + λ KL(old ‖ new)`` (softmaxes at ``T``, the paper's L_d without
      Hinton's T²) over the old classes, ``λ = n_old / (n_old + n_task)`` (classes), the old
      network's logits bias-corrected as it predicted.
    * Held out: ``val_fraction`` of the smallest old class's exemplars (at least one), that
      many items of every old class from the memory and of every new class from the new data;
      both are left out of training (the paper's 9 : 1 split).
    * After the fit, ``(α, β)`` on the new classes' logits minimise the held-out cross-entropy
      over the classes seen plus ``ridge · ((α − 1)² + β²)`` (:func:`fit_bias`, solved to its
      minimum where the paper runs SGD); the correction applies at evaluation. The ridge keeps
      the fit finite when the small held-out set is separable by the two parameters (then the
      bare cross-entropy has no minimum: α ran to 527 on Split-Digits; the paper's SGD stops
      short of it instead).

    Defaults: ``T = 2`` and a 9 : 1 split as in the paper; ``ridge = 0.1`` (ours); a 200-item
    memory like the other rehearsal configs here (the paper: 2,000 on CIFAR-100, 20,000 on
    ImageNet).

    Args:
        buffer_size: memory capacity, shared equally among the classes seen.
        val_fraction: share of the exemplars held out for the bias correction.
        temperature: distillation temperature T.
        ridge: pull of ``(α, β)`` towards ``(1, 0)``.
        seed: seeds the memory and the held-out split.
    """

    def __init__(self, buffer_size: int = 200, val_fraction: float = 0.1,
                 temperature: float = 2.0, ridge: float = 0.1, seed: int = 0,
                 buffer_device: str | None = None) -> None:
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"val_fraction={val_fraction} is invalid; allowed: 0 < x < 1")
        if temperature <= 0 or ridge < 0:
            raise ConfigError(f"temperature={temperature}, ridge={ridge} are invalid; allowed: "
                              "temperature > 0, ridge >= 0")
        super().__init__(buffer_size, policy=ClassBalanced(), seed=seed,
                         buffer_device=buffer_device)
        self.val_fraction, self.temperature, self.ridge = val_fraction, temperature, ridge
        self.seed = seed
        self._teacher = Snapshot()
        self._old_classes: list[int] = []
        self._new_classes: list[int] = []
        self._bias: Bias | None = None  # applied at evaluation
        self._teacher_bias: Bias | None = None  # the old network's

    def split(self, stream: Stream, index: int) -> tuple[TensorData, TensorData | None]:
        """Task ``index``'s training set (new data and memory) and the held-out set."""
        data = stream[index].train
        if not len(self.buffer):
            return data, None
        memory = self.memory_like(data)
        counts = torch.bincount(memory.y.cpu())
        per_class = max(1, round(self.val_fraction * int(counts[counts > 0].min())))
        held_new = balanced_holdout(data.y.cpu(), per_class, self.seed + index)
        held_old = balanced_holdout(memory.y.cpu(), per_class, self.seed + index + 7919)
        def pick(part: TensorData, mask: Tensor) -> TensorData:
            return part.subset(mask.nonzero().flatten().to(part.x.device))

        return (TensorData.concat([pick(data, ~held_new), pick(memory, ~held_old)]),
                TensorData.concat([pick(data, held_new), pick(memory, held_old)]))

    def train_data(self, stream: Stream, index: int) -> TensorData | None:
        return self.split(stream, index)[0]

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        super().on_task_start(module, stream, index)  # lazy tasks' data for the memory
        self._new_classes = list(stream[index].classes)
        if self._bias is not None:  # the last fit's correction now belongs to the teacher
            self._teacher_bias, self._bias = self._bias, None

    def loss(self, module, step, loss):
        if not self._teacher.taken:
            return loss
        old = torch.tensor(self._old_classes, device=step.y.device)
        with torch.no_grad():
            teacher = corrected(self._teacher.net(module.net)(step.inputs), self._teacher_bias)
        # n_old / (n_old + n_new) over the task's classes: the paper's λ in class-IL, and 1/2,
        # not 1, in domain-IL, where a task's classes are all old ones again.
        lam = len(self._old_classes) / (len(self._old_classes) + len(self._new_classes))
        # The paper's L_d is the cross-entropy to the softened teacher, without Hinton's T².
        distill = distillation_loss(step.raw_logits, teacher, old, self.temperature)
        distill = distill / self.temperature**2
        return (1 - lam) * loss + lam * distill

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        held = self.split(stream, index)[1]
        new = [c for c in self._new_classes if c not in self._old_classes]
        if held is not None and new:
            seen = sorted(set(self._old_classes) | set(new))
            with torch.no_grad():
                was = module.net.training
                logits = module.net.eval()(held.x.to(module.device))[:, seen]
                module.net.train(was)
            position = torch.full((stream.n_classes,), -1, dtype=torch.long)
            position[seen] = torch.arange(len(seen))
            alpha, beta = fit_bias(logits, position[held.y.cpu()],
                                   torch.tensor([c in new for c in seen]), self.ridge)
            self._bias = (alpha, beta, new)
        self.remember_task(stream, index)
        self._old_classes = sorted(set(self._old_classes) | set(self._new_classes))
        self._teacher.take(module.net)

    def predict(self, module, x, t, logits):
        return corrected(logits, self._bias)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "old_state": self._teacher.weights,
                "old_classes": self._old_classes, "new_classes": self._new_classes,
                "bias": self._bias, "teacher_bias": self._teacher_bias}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._teacher.load(state["old_state"])
        self._old_classes, self._new_classes = state["old_classes"], state["new_classes"]
        self._bias, self._teacher_bias = state["bias"], state["teacher_bias"]
