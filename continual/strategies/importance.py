"""Parameter importances and the quadratic penalty built on them, as pure functions.

An importance is a sum over samples of ``φ(per-sample gradient)`` (``φ`` = square for a
Fisher, abs for MAS). :func:`per_sample_sums` gets it from one batched forward pass and one
backward pass per objective, with module hooks: each covered layer's per-sample gradient is a
product of its input and the gradient at its output (the rules in ``_RULES``). Networks with a
parameter outside those layers fall back to :func:`per_sample_grads` (``torch.func``: ``vmap``
over ``grad``), correct for any network but slower (1.4–1.6× on the reduced ResNet-18:
``experiments/benchmarks/importance.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from continual.data.tensors import TensorData

Params = dict[str, Tensor]
FisherMode = Literal["true", "empirical", "sampled"]
FISHER_MODES = ("true", "empirical", "sampled")
Objectives = Callable[[Tensor], Iterator[tuple[Tensor, Tensor]]]
Phi = Literal["square", "abs"]  # φ of a Fisher, of MAS
Terms = Iterator[tuple[Tensor, Tensor]]  # (labels [B], weights [B]) of a Fisher's terms


def trainable(net: nn.Module) -> Params:
    """The parameters a penalty applies to, detached: ``{name: tensor}``."""
    return {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}


def fisher_diagonal(
    net: nn.Module,
    data: TensorData,
    class_mask: Tensor | None = None,
    mode: FisherMode = "true",
    batch_size: int | None = None,
    seed: int = 0,
    uniforms: Tensor | None = None,
) -> Params:
    """Diagonal Fisher information of the network's predictive distribution on ``data``.

    ``"true"``: ``F = 1/N Σ_i Σ_c p(c|x_i) (∂ log p(c|x_i) / ∂θ)²``, the exact expectation
    over the model's own predicted labels (one backward pass per class). ``"sampled"``: one
    label ``ŷ_i ~ p(·|x_i)`` per sample (seeded by ``seed``, one uniform draw per sample, so
    the draws do not depend on ``batch_size``), ``F = 1/N Σ_i (∂ log p(ŷ_i|x_i) / ∂θ)²``: an
    unbiased estimate of the true Fisher at the cost of one backward pass. ``"empirical"``:
    the observed label, ``F = 1/N Σ_i (∂ log p(y_i|x_i) / ∂θ)²``, as cheap but a biased
    estimate that shrinks as the training loss goes to zero (Kunstner et al. 2019).

    ``class_mask`` (``[tasks, C]`` bool) hides logits outside a sample's task, as the module
    does in task-incremental streams: probabilities are over the task's classes only.
    ``uniforms`` (``[N]`` in [0, 1)), when given, replace the seeded draws: a share of a
    larger set then samples the labels the whole set would (data-parallel ranks).
    ``batch_size``: samples per pass (``None``: as many as :func:`chunk_size` allows).
    """
    if uniforms is None:
        uniforms = torch.rand(len(data), generator=torch.Generator().manual_seed(seed))
    fisher = {n: torch.zeros_like(p) for n, p in trainable(net).items()}
    with _evaluated(net):
        for x, y, mask, u in _chunks(net, data, class_mask, batch_size, uniforms):
            terms = partial(_fisher_terms, mode=mode, y=y, u=u)
            sums = per_sample_sums(net, x, mask, partial(_log_likelihoods, terms=terms),
                                   "square")
            if sums is None:
                sums = _fisher_by_torch_func(net, x, mask, terms)
            for n in fisher:
                fisher[n] += sums[n]
    return {n: f / max(len(data), 1) for n, f in fisher.items()}


def output_norm_importance(
    net: nn.Module, data: TensorData, class_mask: Tensor | None = None,
    batch_size: int | None = None,
) -> Params:
    """MAS importance (Aljundi et al. 2018): ``Ω = 1/N Σ_i |∂ ‖f(x_i)‖² / ∂θ|``.

    Unsupervised: the sensitivity of the output's squared L2 norm, labels not needed.
    """
    omega = {n: torch.zeros_like(p) for n, p in trainable(net).items()}
    with _evaluated(net):  # the deployed function; per-sample grads cannot draw dropout masks
        for x, y, mask, _ in _chunks(net, data, class_mask, batch_size, None):
            sums = per_sample_sums(net, x, mask, _output_norms, "abs")
            if sums is None:
                grads = per_sample_grads(net, x, y, mask, _squared_norm)
                sums = {n: g.abs().sum(0) for n, g in grads.items()}
            for n in omega:
                omega[n] += sums[n]
    return {n: w / max(len(data), 1) for n, w in omega.items()}


def quadratic_penalty(params: dict[str, Tensor], anchors: Params, importance: Params) -> Tensor:
    """``Σ_p Ω_p (θ_p − θ*_p)²``; its gradient is ``2 Ω (θ − θ*)``."""
    total = None
    for name, anchor in anchors.items():
        term = (importance[name] * (params[name] - anchor) ** 2).sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


# ---------------------------------------------------------------- per-sample sums by hooks

def per_sample_sums(net: nn.Module, x: Tensor, mask: Tensor | None, objectives: Objectives,
                    phi: Phi) -> Params | None:
    """``Σ_(f, w) Σ_i w_i φ(∂f_i/∂θ)`` from one forward pass and a backward per objective.

    ``objectives(logits)`` yields pairs of per-sample values ``f`` ``[B]`` and weights ``w``
    ``[B]``; ``φ`` is ``"square"`` or ``"abs"``. A layer run on a batch of independent
    samples gets sample ``i``'s gradient from its own input ``a_i`` and ``δ_i = ∂f_i/∂out_i``,
    and one backward pass of ``Σ_i f_i`` gives every ``δ_i``: a linear layer's is ``δ_i a_iᵀ``
    (``φ`` factorises: the weighted sum is the matrix product ``(w φ(δ))ᵀ φ(a)``), a conv
    layer's the same product over its unfolded input, a norm layer's ``Σ δ_i · â_i`` with
    ``â_i`` its normalised input, an embedding's the rows of ``δ_i`` at the sample's indices.

    ``None`` (use :func:`per_sample_grads`) unless every trainable parameter belongs to a layer
    of exactly a type in ``_RULES`` (Linear, Conv1d/2d, BatchNorm on running statistics,
    GroupNorm, LayerNorm, Embedding), each call of which took the batch (first dimension
    ``len(x)``) as its first positional argument. A layer may run several times (its
    per-sample gradients are summed first); its output may be changed in place (the hook hands
    on a copy), its input not (as autograd requires of a trained layer's input). Samples must
    not otherwise interact in the network.
    """
    trained = {n for n, p in net.named_parameters() if p.requires_grad}
    layers = {name: m for name, m in net.named_modules()
              if type(m) in _RULES and any(p.requires_grad for p in m.parameters(False))}
    owned = {_join(name, p) for name, m in layers.items()
             for p, q in m.named_parameters(recurse=False) if q.requires_grad}
    if owned != trained:
        return None
    calls: list[tuple[str, Tensor, Tensor]] = []  # (layer, input, output) of each call
    fits = True

    def record(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, out: Tensor) -> Tensor | None:
            nonlocal fits
            a = args[0] if args else None
            if not (isinstance(a, Tensor) and isinstance(out, Tensor) and len(a) == len(x)
                    and len(out) == len(x) and _RULES[type(module)].fits(module, a)):
                fits = False
                return None
            calls.append((name, a, out))
            return out.clone()  # later in-place changes hit the copy, not the output kept
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in layers.items()]
    try:
        with torch.enable_grad():
            logits = net(x)
    finally:
        for handle in handles:
            handle.remove()
    if not fits:
        return None
    if mask is not None:
        logits = logits.masked_fill(~mask[:, : logits.shape[-1]], torch.finfo(logits.dtype).min)
    sums = {n: torch.zeros_like(p) for n, p in trainable(net).items()}
    for values, weights in objectives(logits):
        deltas = torch.autograd.grad(values.sum(), [out for _, _, out in calls],
                                     retain_graph=True, allow_unused=True)
        for name, m in layers.items():
            pairs = [(a.detach(), d) for (n, a, _), d in zip(calls, deltas)
                     if n == name and d is not None]
            if not pairs:
                continue
            want = {p for p, q in m.named_parameters(recurse=False) if q.requires_grad}
            for p, total in _layer_sums(m, pairs, weights, phi, want).items():
                sums[_join(name, p)] += total
    return sums


def _layer_sums(m: nn.Module, pairs: list[tuple[Tensor, Tensor]], w: Tensor, phi: Phi,
                want: set[str]) -> Params:
    """``Σ_i w_i φ(g_i)`` for layer ``m``'s parameters in ``want``, ``g_i`` summed over calls.

    Per-sample gradients are formed a few samples at a time on a CPU, so that they stay in
    cache between being formed, raised to ``φ`` and summed: traffic to memory, not arithmetic,
    is what a whole batch's ``[B, *shape]`` gradients would cost.
    """
    w = w.to(pairs[0][1].dtype)
    if type(m) is nn.Embedding:
        return _embedding_sums(m, pairs, w, phi)
    if type(m) is nn.Linear and len(pairs) == 1 and pairs[0][0].ndim == 2:
        a, d = pairs[0]
        wd = _power(d, phi) * w[:, None]  # no per-sample copies of the weight
        sums = {"weight": wd.T @ _power(a, phi)} if "weight" in want else {}
        return {**sums, "bias": wd.sum(0)} if "bias" in want else sums
    size = sum(q.numel() for p, q in m.named_parameters(recurse=False) if p in want)
    step = max(1, CACHE_BLOCK // size) if w.device.type == "cpu" else len(w)
    sums: Params = {}
    for s in range(0, len(w), step):
        grads: Params = {}
        for a, d in pairs:
            for p, g in _RULES[type(m)].grads(m, a[s:s + step], d[s:s + step], want).items():
                grads[p] = grads[p] + g if p in grads else g
        for p, g in grads.items():
            part = torch.einsum("b,b...->...", w[s:s + step], _power(g, phi, in_place=True))
            sums[p] = sums[p] + part if p in sums else part
    return sums


CACHE_BLOCK = 1 << 18
"""Per-sample gradient entries formed at once on a CPU (1 MiB of float32)."""


_SUBNORMAL = torch.finfo(torch.float32).tiny  # float32's smallest normal number


def _power(t: Tensor, phi: Phi, in_place: bool = False) -> Tensor:
    """``φ(t)``. Squares below float32's smallest normal number (1.2e-38) are set to zero: a
    confident network's tiny gradients (and a layer's tiny inputs) square to subnormal
    numbers, which a CPU multiplies up to ten times slower (an MLP's Fisher after its first
    task: 22 ms instead of 4), and whose products are far below any importance that counts."""
    if phi == "square":
        t = t.square_() if in_place else t.square()
        return F.threshold_(t, _SUBNORMAL, 0.0) if t.is_floating_point() else t
    return t.abs_() if in_place else t.abs()


def _linear(m: nn.Linear, a: Tensor, d: Tensor, want: set[str]) -> Params:
    a, d = a.reshape(len(a), -1, a.shape[-1]), d.reshape(len(d), -1, d.shape[-1])
    out = {"weight": d.transpose(1, 2) @ a} if "weight" in want else {}
    return {**out, "bias": d.sum(1)} if "bias" in want else out


def _conv(m: nn.Conv1d | nn.Conv2d, a: Tensor, d: Tensor, want: set[str]) -> Params:
    """Per-sample ``Σ_l δ_l u_lᵀ`` over output positions ``l``, ``u_l`` the input patch."""
    out = {"bias": d.flatten(2).sum(-1)} if "bias" in want else {}
    if "weight" not in want:
        return out
    kernel, dilation, stride = m.kernel_size, m.dilation, m.stride
    if isinstance(m.padding, str):  # "valid" or "same" (extra padding after, as torch does)
        total = [0 if m.padding == "valid" else r * (k - 1) for r, k in zip(dilation, kernel)]
        sides = [(t // 2, t - t // 2) for t in total]
    else:
        sides = [(p, p) for p in m.padding]
    pad = [v for side in reversed(sides) for v in side]  # F.pad: last dimension first
    a = F.pad(a, pad, mode="constant" if m.padding_mode == "zeros" else m.padding_mode)
    if a.ndim == 3:  # Conv1d as a Conv2d of height 1
        a, d = a.unsqueeze(2), d.unsqueeze(2)
        kernel, dilation, stride = (1, *kernel), (1, *dilation), (1, *stride)
    b, g = len(a), m.groups
    if stride == (1, 1) and a.shape[1] // g >= SHIFTED_MIN_CHANNELS:
        weight = _shifted_products(a, d, kernel, dilation, g)
    else:  # strided, or too few channels for the shifted products to pay
        patches = F.unfold(a, kernel, dilation=dilation, stride=stride)  # [B, C·k, L]
        weight = torch.bmm(d.reshape(b * g, -1, patches.shape[-1]),
                           patches.reshape(b * g, -1, patches.shape[-1]).transpose(1, 2))
    return {**out, "weight": weight.reshape(b, *m.weight.shape)}


SHIFTED_MIN_CHANNELS = 8
"""Fewest input channels (per group) for which a stride-1 conv uses the shifted products:
with fewer, ``k²`` products of one or two columns each cost more than the unfolding."""


def _shifted_products(a: Tensor, d: Tensor, kernel: tuple[int, ...],
                      dilation: tuple[int, ...], groups: int) -> Tensor:
    """A stride-1 conv's per-sample weight gradients ``[B·groups, O/g, C/g, kh, kw]``
    without unfolding: one batched product per kernel offset, on views of the input.

    With the padded input ``a`` flattened row by row (width ``W``) and ``δ`` widened to ``W``
    with zero columns, the input patch element at offset ``(i, j)`` of every output position is
    the flattened input shifted by ``i·W + j`` (times the dilation): a strided view a matrix
    product reads in place, where ``F.unfold`` would first copy the input ``k²`` times.
    """
    (kh, kw), (rh, rw) = kernel, dilation
    b, width = len(a), a.shape[-1]
    a = F.pad(a, [0, 0, 0, 1]).reshape(b * groups, a.shape[1] // groups, -1)  # a spare row
    d = F.pad(d, [0, width - d.shape[-1]]).reshape(b * groups, d.shape[1] // groups, -1)
    out = d.new_empty(kh, kw, b * groups, d.shape[1], a.shape[1])
    for i in range(kh):
        for j in range(kw):
            shift = i * rh * width + j * rw
            torch.bmm(d, a[:, :, shift:shift + d.shape[-1]].transpose(1, 2), out=out[i, j])
    return out.permute(2, 3, 4, 0, 1)


def _normed(m: nn.Module, a: Tensor, d: Tensor, want: set[str]) -> Params:
    """``γ`` and ``β`` of a norm layer: per-sample ``Σ δ·â`` and ``Σ δ`` over positions."""
    if isinstance(m, nn.LayerNorm):  # sum over the positions before the normalised shape
        shape, positions = (len(a), -1, *m.normalized_shape), 1
    else:  # channels second, sum over the positions after
        shape, positions = (len(a), a.shape[1], -1), -1
    out = {"bias": d.reshape(shape).sum(positions)} if "bias" in want else {}
    if "weight" not in want:
        return out
    if isinstance(m, nn.LayerNorm):
        normalised = F.layer_norm(a, m.normalized_shape, eps=m.eps)
    elif isinstance(m, nn.GroupNorm):
        normalised = F.group_norm(a, m.num_groups, eps=m.eps)
    else:  # batch norm on running statistics: per sample
        stats = (1, -1) + (1,) * (a.ndim - 2)
        normalised = (a - m.running_mean.view(stats)) * torch.rsqrt(m.running_var.view(stats)
                                                                    + m.eps)
    return {**out, "weight": (d * normalised).reshape(shape).sum(positions)}


def _embedding_sums(m: nn.Embedding, pairs: list[tuple[Tensor, Tensor]], w: Tensor,
                    phi: Phi) -> Params:
    """Rows of ``δ`` summed per (sample, index), without a ``[B, vocabulary, D]`` tensor."""
    b, n, dim = len(w), m.num_embeddings, m.embedding_dim
    index = torch.cat([a.reshape(b, -1) for a, _ in pairs], 1)
    rows = torch.cat([d.reshape(b, -1, dim) for _, d in pairs], 1).reshape(-1, dim)
    keys = (torch.arange(b, device=index.device)[:, None] * n + index).flatten()
    unique, inverse = keys.unique(return_inverse=True)
    per_sample = rows.new_zeros(len(unique), dim).index_add_(0, inverse, rows)
    weighted = _power(per_sample, phi, in_place=True) * w[unique // n, None]
    if m.padding_idx is not None:  # no gradient reaches the padding row
        weighted[unique % n == m.padding_idx] = 0
    return {"weight": rows.new_zeros(n, dim).index_add_(0, unique % n, weighted)}


def _batch_norm_fits(m: nn.Module, a: Tensor) -> bool:
    uses_running_stats = not m.training and m.running_mean is not None
    return uses_running_stats and a.ndim >= 2


def _embedding_fits(m: nn.Module, a: Tensor) -> bool:
    return m.max_norm is None and not m.scale_grad_by_freq and a.ndim >= 1


class _Rule(NamedTuple):
    fits: Callable[[nn.Module, Tensor], bool]  # whether a call on input ``a`` fits the rule
    grads: Callable[..., Params] | None  # (layer, a, δ, wanted names) → per-sample gradients


_RULES: dict[type, _Rule] = {
    nn.Linear: _Rule(lambda m, a: a.ndim >= 2, _linear),
    nn.Conv1d: _Rule(lambda m, a: a.ndim == 3, _conv),
    nn.Conv2d: _Rule(lambda m, a: a.ndim == 4, _conv),
    nn.BatchNorm1d: _Rule(_batch_norm_fits, _normed),
    nn.BatchNorm2d: _Rule(_batch_norm_fits, _normed),
    nn.GroupNorm: _Rule(lambda m, a: a.ndim >= 2, _normed),
    nn.LayerNorm: _Rule(lambda m, a: a.ndim > len(m.normalized_shape), _normed),
    nn.Embedding: _Rule(_embedding_fits, None),  # sums without per-sample gradients
}
"""The layer types the hooks cover, by exact type: a subclass may compute something else."""


# ---------------------------------------------------------------- the torch.func fallback

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


def _fisher_by_torch_func(net: nn.Module, x: Tensor, mask: Tensor | None,
                          terms: Callable[[Tensor], Terms]) -> Params:
    with torch.no_grad():
        probs = _masked(net(x), mask).softmax(-1)
    sums = {n: torch.zeros_like(p) for n, p in trainable(net).items()}
    for labels, weights in terms(probs):
        grads = per_sample_grads(net, x, labels, mask, _log_prob)
        for n in sums:
            sums[n] += torch.einsum("b,b...->...", weights.to(grads[n].dtype), grads[n] ** 2)
    return sums


# ---------------------------------------------------------------- objectives

def _fisher_terms(probs: Tensor, mode: FisherMode, y: Tensor, u: Tensor) -> Terms:
    """The Fisher's terms as (labels, weights): every class weighted by ``p(c|x)`` ("true"),
    one label drawn from ``p(·|x)`` by the uniforms ``u`` ("sampled"), or ``y``."""
    if mode == "empirical":
        yield y, torch.ones_like(probs[:, 0])
    elif mode == "sampled":
        yield sample_labels(probs, u), torch.ones_like(probs[:, 0])
    else:
        for c in range(probs.shape[1]):
            if probs[:, c].max() > 0:  # else a class outside every sample's task
                yield torch.full_like(y, c), probs[:, c]


def sample_labels(probs: Tensor, u: Tensor) -> Tensor:
    """``ŷ_i ~ probs_i`` by inversion of the CDF at ``u_i ∈ [0, 1)``: a class of zero
    probability (masked out) is never drawn, and each sample's draw is its own ``u_i``'s."""
    cdf = probs.cumsum(-1)
    top = cdf[:, -1:]
    at = torch.minimum(u.to(cdf)[:, None] * top, torch.nextafter(top, torch.zeros_like(top)))
    return torch.searchsorted(cdf, at, right=True)[:, 0]


def _log_likelihoods(logits: Tensor, terms: Callable[[Tensor], Terms]
                     ) -> Iterator[tuple[Tensor, Tensor]]:
    """``log p(label|x)`` of each of the Fisher's terms, with its weight."""
    log_p = logits.log_softmax(-1)  # [B, C]
    for labels, weights in terms(log_p.detach().exp()):
        yield log_p.gather(1, labels[:, None])[:, 0], weights


def _output_norms(logits: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    finite = torch.where(logits > torch.finfo(logits.dtype).min, logits, 0.0)
    yield (finite**2).sum(-1), torch.ones_like(finite[:, 0])


def _log_prob(logits: Tensor, target: Tensor) -> Tensor:
    return -F.cross_entropy(logits.unsqueeze(0), target.unsqueeze(0))  # log p(target | x)


def _squared_norm(logits: Tensor, target: Tensor) -> Tensor:
    finite = torch.where(logits > torch.finfo(logits.dtype).min, logits, 0.0)
    return (finite**2).sum()


# ---------------------------------------------------------------- helpers

def _chunks(net: nn.Module, data: TensorData, class_mask: Tensor | None,
            batch_size: int | None, uniforms: Tensor | None) -> Iterator[tuple[Tensor, ...]]:
    """``(x, y, mask rows or None, uniforms)`` per batch, on the network's device."""
    device = next(net.parameters()).device
    if batch_size is None:
        batch_size = chunk_size(net, data.x[:1].to(device)) if len(data) else 1
    for start in range(0, len(data), batch_size):
        x, y, t = (v[start:start + batch_size].to(device) for v in (data.x, data.y, data.t))
        mask = None if class_mask is None else class_mask.to(device)[t]
        u = None if uniforms is None else uniforms[start:start + batch_size].to(device)
        yield x, y, mask, u


CHUNK_BYTES = 16 << 20
"""Layer outputs one importance pass may hold (16 MiB): an MLP's 512 samples take one pass,
a small CNN's take nine of 62 (near the best of a sweep on a CPU:
``experiments/benchmarks/importance_chunks.md``)."""


def chunk_size(net: nn.Module, x: Tensor, low: int = 32, high: int = 1024) -> int:
    """Samples per importance pass: as many as keep the layer outputs of a pass (measured on
    the one sample ``x``) within :data:`CHUNK_BYTES`, between ``low`` and ``high``.

    Fewer, larger passes cost less per sample (one kernel launch, one hook call per layer
    for many samples) until the kept outputs spill out of cache.
    """
    total = 0

    def count(module: nn.Module, args: tuple, out: object) -> None:
        nonlocal total
        if isinstance(out, Tensor):
            total += out.numel() * out.element_size()

    leaves = [m for m in net.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad(), _evaluated(net):
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return max(low, min(high, CHUNK_BYTES // max(total, 1)))


@contextmanager
def _evaluated(net: nn.Module) -> Iterator[None]:
    """The network in eval mode (no dropout, running statistics), its mode restored after."""
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)


def _masked(logits: Tensor, mask: Tensor | None) -> Tensor:
    return logits if mask is None else logits.masked_fill(~mask[:, : logits.shape[-1]],
                                                          float("-inf"))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
