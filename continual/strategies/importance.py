"""Parameter importances and the quadratic penalty built on them, as pure functions.

Per-sample gradients come from ``torch.func`` (``vmap`` over ``grad``), so an importance over
N samples costs a few batched passes rather than N backward calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from continual.data.tensors import TensorData

Params = dict[str, Tensor]
FisherMode = Literal["true", "empirical"]


def trainable(net: nn.Module) -> Params:
    """The parameters a penalty applies to, detached: ``{name: tensor}``."""
    return {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}


def per_sample_grads(
    net: nn.Module,
    x: Tensor,
    targets: Tensor,
    mask: Tensor | None,
    objective: Callable[[Tensor, Tensor], Tensor],
) -> Params:
    """Gradient of ``objective(logits_i, target_i)`` for each sample: ``{name: [N, *shape]}``.

    ``mask`` (``[N, C]`` bool) hides logits outside a sample's task, as the module does in
    task-incremental streams.
    """
    params = {n: p.detach() for n, p in net.named_parameters() if p.requires_grad}
    frozen = {n: p.detach() for n, p in net.named_parameters() if not p.requires_grad}
    buffers = dict(net.named_buffers())

    def one(p: Params, xi: Tensor, ti: Tensor, mi: Tensor) -> Tensor:
        logits = functional_call(net, ({**p, **frozen}, buffers), (xi.unsqueeze(0),))[0]
        logits = logits.masked_fill(~mi[: logits.shape[-1]], torch.finfo(logits.dtype).min)
        return objective(logits, ti)

    if mask is None:
        with torch.no_grad():
            n_out = net(x[:1]).shape[-1]
        mask = torch.ones(len(x), n_out, dtype=torch.bool, device=x.device)
    return vmap(grad(one), in_dims=(None, 0, 0, 0))(params, x, targets, mask)


def fisher_diagonal(
    net: nn.Module,
    data: TensorData,
    class_mask: Tensor | None = None,
    mode: FisherMode = "true",
    batch_size: int = 64,
) -> Params:
    """Diagonal Fisher information of the network's predictive distribution on ``data``.

    ``"true"``: ``F = 1/N Σ_i Σ_c p(c|x_i) (∂ log p(c|x_i) / ∂θ)²``, the exact expectation
    over the model's own predicted labels (no sampling noise). ``"empirical"``: the observed
    label instead, ``F = 1/N Σ_i (∂ log p(y_i|x_i) / ∂θ)²``, cheaper by a factor of the number
    of classes but a biased estimate away from a minimum (Kunstner et al. 2019).
    """
    fisher = {n: torch.zeros_like(p) for n, p in trainable(net).items()}
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    for start in range(0, len(data), batch_size):
        x, y, t = (v[start:start + batch_size].to(device) for v in (data.x, data.y, data.t))
        mask = None if class_mask is None else class_mask.to(device)[t]
        if mode == "empirical":
            _accumulate(fisher, per_sample_grads(net, x, y, mask, _log_prob), torch.ones_like(y))
            continue
        with torch.no_grad():
            logits = net(x)
            if mask is not None:
                logits = logits.masked_fill(~mask[:, : logits.shape[-1]], float("-inf"))
            probs = logits.softmax(-1)  # [B, C]
        for c in range(probs.shape[1]):
            if probs[:, c].max() == 0:  # a class outside every sample's task
                continue
            labels = torch.full_like(y, c)
            _accumulate(fisher, per_sample_grads(net, x, labels, mask, _log_prob), probs[:, c])
    net.train(was_training)
    return {n: f / max(len(data), 1) for n, f in fisher.items()}


def output_norm_importance(
    net: nn.Module, data: TensorData, class_mask: Tensor | None = None, batch_size: int = 64
) -> Params:
    """MAS importance (Aljundi et al. 2018): ``Ω = 1/N Σ_i |∂ ‖f(x_i)‖² / ∂θ|``.

    Unsupervised: the sensitivity of the output's squared L2 norm, labels not needed.
    """
    omega = {n: torch.zeros_like(p) for n, p in trainable(net).items()}
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()  # the deployed function; per-sample grads cannot draw dropout masks anyway
    for start in range(0, len(data), batch_size):
        x, y, t = (v[start:start + batch_size].to(device) for v in (data.x, data.y, data.t))
        mask = None if class_mask is None else class_mask.to(device)[t]
        grads = per_sample_grads(net, x, y, mask, _squared_norm)
        for n in omega:
            omega[n] += grads[n].abs().sum(0)
    net.train(was_training)
    return {n: w / max(len(data), 1) for n, w in omega.items()}


def quadratic_penalty(params: dict[str, Tensor], anchors: Params, importance: Params) -> Tensor:
    """``Σ_p Ω_p (θ_p − θ*_p)²``; its gradient is ``2 Ω (θ − θ*)``."""
    total = None
    for name, anchor in anchors.items():
        term = (importance[name] * (params[name] - anchor) ** 2).sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


def _log_prob(logits: Tensor, target: Tensor) -> Tensor:
    return -F.cross_entropy(logits.unsqueeze(0), target.unsqueeze(0))  # log p(target | x)


def _squared_norm(logits: Tensor, target: Tensor) -> Tensor:
    finite = torch.where(logits > torch.finfo(logits.dtype).min, logits, 0.0)
    return (finite**2).sum()


def _accumulate(total: Params, grads: Params, weights: Tensor) -> None:
    for n in total:
        g = grads[n]  # [B, *shape]
        total[n] += torch.einsum("b,b...->...", weights.to(g.dtype), g**2)
