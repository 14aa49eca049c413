"""Shared machinery of the quadratic regularisers (EWC, online EWC, SI, MAS).

Each keeps anchors ``θ*`` and importances ``Ω`` and adds ``λ Σ_k Σ_p Ω_kp (θ_p − θ*_kp)²``
to the loss. Subclasses decide only how importance is measured and when.

However many penalties are kept, a training step evaluates one: the sum of quadratics is the
quadratic ``Σ_p A_p (θ_p − m_p)²`` plus a constant, with ``A = Σ_k Ω_k`` and
``m = Σ_k Ω_k θ*_k / A``, kept as running sums updated whenever a penalty is added. Same
gradient ``2 Σ_k Ω_k (θ − θ*_k)``, at the cost of a single penalty.

The gradient ``2λA(θ − m)`` is added to the parameters' gradients just before the optimizer
step, with fused multi-tensor operations (:mod:`continual.compat`), rather than by
back-propagating the penalty through autograd: the same update at a fraction of the cost (the
progress bar's loss is the task loss alone; :meth:`QuadraticRegularizer.penalty` gives the
penalty's value).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from continual.compat import foreach_addcmul_, foreach_sub
from continual.data.tensors import TensorData
from continual.distributed import mean_over_ranks, shard
from continual.errors import ConfigError
from continual.strategies.base import Strategy
from continual.strategies.importance import Params, quadratic_penalty

if TYPE_CHECKING:
    from continual.module import ContinualModule


class QuadraticRegularizer(Strategy):
    """Fine-tuning plus a quadratic pull towards the weights of earlier tasks.

    Args:
        lam: penalty strength λ.
        merge: keep one merged penalty (``Ω ← decay·Ω + Ω_new``, anchor = latest weights),
            whose memory does not grow with tasks, instead of one penalty per task.
        decay: the factor ``decay`` above (γ of online EWC; 1 sums importances).
    """

    def __init__(self, lam: float, merge: bool = False, decay: float = 1.0) -> None:
        if lam < 0:
            raise ConfigError(f"lam={lam} is invalid; allowed: lam >= 0")
        if not 0.0 <= decay <= 1.0:
            raise ConfigError(f"decay={decay} is invalid; allowed: 0 <= decay <= 1")
        self.lam, self._merge, self._decay = lam, merge, decay
        self._anchors: list[Params] = []
        self._importances: list[Params] = []
        self._sums: QuadraticSums | None = None  # Σ_k Ω_k and Σ_k Ω_k θ*_k
        self._merged: tuple[Params, Params] | None = None  # (m, A) on the training device

    def consolidate(self, anchor: Params, importance: Params) -> None:
        """Add the penalty of a finished task."""
        if self._merge and self._importances:
            old = self._importances[0]
            self._importances[0] = {  # a resumed one was loaded on the CPU
                n: self._decay * old[n].to(importance[n].device) + importance[n]
                for n in importance}
            self._anchors[0] = anchor
            self._sums = quadratic_sums(self._anchors, self._importances)
        else:
            self._anchors.append(anchor)
            self._importances.append(importance)
            # The running sums take the new penalty alone (all of them after a resume): a
            # task's end costs the same however many penalties came before.
            self._sums = quadratic_sums(self._anchors, self._importances) \
                if self._sums is None else quadratic_sums([anchor], [importance], self._sums)
        # Merged now, at the task's end, rather than at the next task's first step: the next
        # task's training then runs at the cost of one penalty from its first step.
        self._merged = self._merge_on(next(iter(anchor.values())).device)

    def penalty(self, module: ContinualModule) -> Tensor:
        """``Σ_k Σ_p Ω_kp (θ_p − θ*_kp)²`` at the module's current weights, penalty by penalty
        (for reports: training uses the merged gradient)."""
        named = dict(module.net.named_parameters())
        total = torch.zeros((), device=module.device)
        for anchor, importance in zip(self._anchors, self._importances):
            total = total + quadratic_penalty(
                named, *({n: v.to(module.device) for n, v in d.items()}
                         for d in (anchor, importance)))
        return total

    def on_before_optimizer_step(self, module) -> None:
        if not self._anchors or self.lam == 0:
            return
        centre, weight = self._merged_on(module.device)
        named = dict(module.net.named_parameters())
        names = [n for n in centre if named[n].grad is not None]
        params = [named[n].detach() for n in names]
        pull = foreach_sub(params, [centre[n] for n in names])  # θ − m
        foreach_addcmul_([named[n].grad for n in names], [weight[n] for n in names], pull,
                                value=2.0 * self.lam)  # g += 2λ A (θ − m)

    def _merged_on(self, device: torch.device) -> tuple[Params, Params]:
        if self._merged is None or next(iter(self._merged[0].values())).device != device:
            self._merged = self._merge_on(device)
        return self._merged

    def _merge_on(self, device: torch.device) -> tuple[Params, Params]:
        """``(m, A)`` on ``device``: a lone penalty's own anchor and importance (exact, no
        arithmetic), else the centre of the running sums."""
        if len(self._anchors) == 1:
            return tuple({n: v.to(device) for n, v in d.items()}  # type: ignore[return-value]
                         for d in (self._anchors[0], self._importances[0]))
        if self._sums is None:
            self._sums = quadratic_sums(self._anchors, self._importances)
        return centred(self._sums, self._anchors[0], device)

    def state_dict(self) -> dict[str, Any]:
        return {"anchors": self._anchors, "importances": self._importances}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._anchors = list(state["anchors"])
        self._importances = list(state["importances"])
        self._sums = self._merged = None

    def memory_bytes(self) -> int:
        """Bytes held by anchors and importances (constant when ``merge``)."""
        tensors = [t for d in self._anchors + self._importances for t in d.values()]
        return sum(t.numel() * t.element_size() for t in tensors)


def measure_over_ranks(measure: Callable[..., Params], data: TensorData,
                       *per_sample: Tensor) -> Params:
    """``measure(data, *per_sample)``, an importance averaged over samples; under DDP each rank
    measures its share (of ``data`` and of each ``per_sample`` tensor alike) and the shares
    are averaged by size, so every rank holds the importance of all."""
    index = torch.arange(len(data))[shard(len(data))]
    part = data.subset(index)
    return mean_over_ranks(measure(part, *(v[index] for v in per_sample)), len(part))


QuadraticSums = dict[str, tuple[Tensor, Tensor]]
"""Per parameter, ``(Σ_k Ω_k, Σ_k Ω_k θ*_k)``, at least float32."""


def quadratic_sums(anchors: list[Params], importances: list[Params],
                   sums: QuadraticSums | None = None) -> QuadraticSums:
    """``sums`` (or zeros) plus the penalties ``(θ*_k, Ω_k)``, in place, one at a time (the
    temporaries do not grow with the number of penalties)."""
    if sums is None:
        sums = {name: tuple(torch.zeros(like.shape, device=like.device,
                                        dtype=torch.promote_types(like.dtype, torch.float32))
                            for _ in range(2)) for name, like in importances[0].items()}
    for name, (a, b) in sums.items():
        for imp, anc in zip(importances, anchors):
            o = imp[name].to(a.device)  # penalties loaded from a checkpoint: on the CPU
            a += o
            b.addcmul_(o, anc[name].to(b.device))
    return sums


def centred(sums: QuadraticSums, like: Params, device: torch.device) -> tuple[Params, Params]:
    """``(m, A)`` from the running sums: ``Σ_k Ω_k (θ − θ*_k)² = A (θ − m)² + const``, on
    ``device`` in the dtypes of ``like``'s tensors (the parameters'); ``m = 0`` where no
    penalty weighs a parameter."""
    centre, weight = {}, {}
    for name, (a, b) in sums.items():
        m = torch.where(a > 0, b / a.clamp_min(torch.finfo(a.dtype).tiny), 0.0)
        dtype = like[name].dtype
        centre[name], weight[name] = m.to(device, dtype), a.to(device, dtype)
    return centre, weight
