"""Riemannian Walk (Chaudhry et al. 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from continual.data.stream import Stream
from continual.errors import ConfigError
from continual.strategies.importance import Params, trainable
from continual.strategies.regularizer import QuadraticRegularizer


def ewc_pp(fisher: Tensor | None, grad: Tensor, alpha: float) -> Tensor:
    """EWC++'s running Fisher (the paper's Eq. 6): ``α g² + (1 − α) F``; ``g²`` at first."""
    return grad.square() if fisher is None else alpha * grad.square() + (1 - alpha) * fisher


def path_score(loss_drop: Tensor, fisher: Tensor, moved: Tensor, eps: float) -> Tensor:
    """One interval's score (Eq. 7): the loss decrease the weight caused, ``Σ −g·Δθ`` over the
    interval's steps, over the KL divergence its move ``moved`` costs, ``½ F moved² + ε``."""
    return loss_drop / (0.5 * fisher * moved.square() + eps)


def rwalk_importance(fisher: Params, score: Params) -> Params:
    """The penalty's weights (Eq. 8): ``F / max F + max(s, 0) / max s``, each term scaled to
    [0, 1] by its largest entry over all parameters."""
    top_f = max(float(f.max()) for f in fisher.values()) or 1.0
    top_s = max(float(s.clamp_min(0).max()) for s in score.values()) or 1.0
    return {n: fisher[n] / top_f + score[n].clamp_min(0) / top_s for n in fisher}


class RWalk(QuadraticRegularizer):
    """EWC++'s running Fisher plus a path-integral score, one quadratic pull to the last task's
    weights: ``CE + λ Σ_p (F̃_p + s̃_p)(θ_p − θ*_p)²``.

    ``F`` is the moving average of the squared training gradient, updated every step and kept
    across tasks (:func:`ewc_pp`). The score sums, for every ``delta_t`` steps (and the task's
    last, shorter, interval), the loss decrease each weight's move caused, ``Σ −g·Δθ``, over
    the move's KL cost ``½ F Δθ² + ε`` (:func:`path_score`); a task's score is averaged with the
    earlier ones' (``s ← (s + s_task) / 2``). ``g`` is the gradient of the training loss alone
    (the penalty's pull is not credited). Defaults are Avalanche's RWalk plugin's: λ = 0.1,
    α = 0.9, Δt = 10, ε the float32 machine epsilon.

    Args:
        lam: penalty strength λ.
        alpha: weight α of the newest squared gradient in the running Fisher.
        delta_t: steps per score interval.
        eps: ε in the score's denominator.
    """

    def __init__(self, lam: float = 0.1, alpha: float = 0.9, delta_t: int = 10,
                 eps: float = 1.1920929e-07) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ConfigError(f"alpha={alpha} is invalid; allowed: 0 < alpha <= 1")
        if delta_t < 1 or eps <= 0:
            raise ConfigError(f"delta_t={delta_t}, eps={eps} are invalid; allowed: "
                              "delta_t >= 1 and eps > 0")
        super().__init__(lam, merge=True, decay=0.0)  # each task's weights replace the last
        self.alpha, self.delta_t, self.eps = alpha, delta_t, eps
        self._fisher: Params = {}
        self._score: Params = {}  # over the tasks finished
        self._task_score: Params = {}
        self._drop: Params = {}  # Σ −g·Δθ over the open interval
        self._start: Params = {}  # the weights at the interval's start
        self._steps = 0
        self._grad: Params = {}
        self._before: Params = {}

    @property
    def importance(self) -> Params:
        """The penalty's current weights ``F̃ + s̃`` (empty before the first task ends)."""
        return self._importances[0] if self._importances else {}

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        self._start = trainable(module.net)
        self._drop = {n: torch.zeros_like(p) for n, p in self._start.items()}
        self._task_score = {n: torch.zeros_like(p) for n, p in self._start.items()}
        self._steps = 0

    def on_before_optimizer_step(self, module) -> None:
        named = dict(module.net.named_parameters())
        self._grad = {n: named[n].grad.detach().clone() for n in self._start
                      if named[n].grad is not None}
        for n, g in self._grad.items():
            self._fisher[n] = ewc_pp(self._fisher.get(n), g, self.alpha)
        self._before = {n: named[n].detach().clone() for n in self._grad}
        super().on_before_optimizer_step(module)  # then the penalty's pull

    def after_step(self, module, step) -> None:
        named = dict(module.net.named_parameters())
        for n, g in self._grad.items():
            self._drop[n] -= g * (named[n].detach() - self._before[n])
        self._grad, self._before = {}, {}
        self._steps += 1
        if self._steps % self.delta_t == 0:
            self._close_interval(module)

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        if self._steps % self.delta_t:
            self._close_interval(module)
        self._score = self._task_score if not self._score else {
            n: 0.5 * (self._score[n] + self._task_score[n]) for n in self._task_score}
        fisher = {n: self._fisher.get(n, torch.zeros_like(s)) for n, s in self._score.items()}
        self.consolidate(trainable(module.net), rwalk_importance(fisher, self._score))

    def _close_interval(self, module) -> None:
        now = trainable(module.net)
        for n, drop in self._drop.items():
            fisher = self._fisher.get(n, torch.zeros_like(drop))
            self._task_score[n] += path_score(drop, fisher, now[n] - self._start[n], self.eps)
            drop.zero_()
        self._start = now

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "fisher": self._fisher, "score": self._score,
                "task_score": self._task_score, "drop": self._drop, "start": self._start,
                "steps": self._steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._fisher, self._score = dict(state["fisher"]), dict(state["score"])
        self._task_score, self._drop = dict(state["task_score"]), dict(state["drop"])
        self._start, self._steps = dict(state["start"]), int(state["steps"])
