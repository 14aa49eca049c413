"""Parameter importances and the quadratic penalty built on them, as pure functions.

Per-sample gradients come from ``torch.func`` (``vmap`` over ``grad``), so an importance over
N samples costs a few batched passes rather than N backward calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
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
        sums = linear_per_sample_sums(net, x, mask, partial(_log_likelihoods, mode=mode, y=y),
                                      torch.square)
        if sums is not None:  # every parameter in linear layers: no per-sample gradients
            for n in fisher:
                fisher[n] += sums[n]
            continue
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
        sums = linear_per_sample_sums(net, x, mask, _output_norms, torch.abs)
        if sums is None:
            grads = per_sample_grads(net, x, y, mask, _squared_norm)
            sums = {n: g.abs().sum(0) for n, g in grads.items()}
        for n in omega:
            omega[n] += sums[n]
    net.train(was_training)
    return {n: w / max(len(data), 1) for n, w in omega.items()}


Objectives = Callable[[Tensor], Iterator[tuple[Tensor, Tensor]]]


def linear_per_sample_sums(net: nn.Module, x: Tensor, mask: Tensor | None,
                           objectives: Objectives, phi: Callable[[Tensor], Tensor]
                           ) -> Params | None:
    """``Σ_(f, w) Σ_i w_i φ(∂f_i/∂θ)`` without forming per-sample gradients, or ``None``.

    ``objectives(logits)`` yields pairs of per-sample values ``f`` ``[B]`` and weights ``w``
    ``[B]``; ``φ`` is ``torch.square`` or ``torch.abs``. For a linear layer ``z = W a + b`` run
    once on a batch of independent samples, sample ``i``'s weight gradient is ``δ_i a_iᵀ``
    (``δ_i = ∂f_i/∂z_i``, one backward pass gives every ``δ_i``) and ``φ`` factorises,
    ``φ(δ_i a_iᵀ) = φ(δ_i) φ(a_i)ᵀ``: the weighted sum over the batch is one matrix product
    ``(w φ(δ))ᵀ φ(a)``, where per-sample gradients would hold ``B`` copies of every weight.

    ``None`` (use :func:`per_sample_grads`) unless every trainable parameter belongs to an
    ``nn.Linear`` that ran at most once, on a ``[B, features]`` input, with neither its input
    nor its output changed in place afterwards. Samples must not interact (the network is in
    eval mode: no batch statistics).
    """
    layers = {name: m for name, m in net.named_modules() if isinstance(m, nn.Linear)}
    owned = {f"{name}.{p}" if name else p for name, m in layers.items()
             for p, q in m.named_parameters(recurse=False) if q.requires_grad}
    if owned != {n for n, p in net.named_parameters() if p.requires_grad}:
        return None
    seen: dict[str, tuple[Tensor, Tensor, int, int]] = {}  # layer: (input, output, versions)
    fits = True

    def record(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
            nonlocal fits
            a = args[0]
            fits = fits and name not in seen and a.ndim == 2 and len(a) == len(x)
            seen[name] = (a, out, a._version, out._version)
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in layers.items()]
    try:
        with torch.enable_grad():
            logits = net(x)
    finally:
        for handle in handles:
            handle.remove()
    used = [n for n in layers if n in seen and seen[n][1].requires_grad]
    if not fits or any(seen[n][0]._version != seen[n][2] or seen[n][1]._version != seen[n][3]
                       for n in used):
        return None
    if mask is not None:
        logits = logits.masked_fill(~mask[:, : logits.shape[-1]], torch.finfo(logits.dtype).min)
    sums = {n: torch.zeros_like(p) for n, p in trainable(net).items()}
    for values, weights in objectives(logits):
        deltas = torch.autograd.grad(values.sum(), [seen[n][1] for n in used],
                                     retain_graph=True, allow_unused=True)
        for name, delta in zip(used, deltas):
            if delta is None:
                continue
            weighted = phi(delta) * weights.to(delta.dtype)[:, None]  # [B, out]
            prefix, layer = f"{name}." if name else "", layers[name]
            if layer.weight.requires_grad:
                sums[prefix + "weight"] += weighted.T @ phi(seen[name][0].detach())
            if layer.bias is not None and layer.bias.requires_grad:
                sums[prefix + "bias"] += weighted.sum(0)
    return sums


def _log_likelihoods(logits: Tensor, mode: FisherMode, y: Tensor
                     ) -> Iterator[tuple[Tensor, Tensor]]:
    """The Fisher's terms: ``log p(c|x)`` weighted by ``p(c|x)`` per class, or ``log p(y|x)``."""
    log_p = logits.log_softmax(-1)  # [B, C]
    if mode == "empirical":
        yield log_p.gather(1, y[:, None])[:, 0], torch.ones_like(log_p[:, 0])
        return
    probs = log_p.detach().exp()
    for c in range(probs.shape[1]):
        if probs[:, c].max() > 0:  # else a class outside every sample's task
            yield log_p[:, c], probs[:, c]


def _output_norms(logits: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    finite = torch.where(logits > torch.finfo(logits.dtype).min, logits, 0.0)
    yield (finite**2).sum(-1), torch.ones_like(finite[:, 0])


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
