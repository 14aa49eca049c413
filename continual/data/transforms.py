"""Tensor-to-tensor transforms for data held as tensors (torchvision.transforms.v2 work on them).

Two kinds, applied at different times:

- ``transform`` (preprocessing: normalise, resize) runs **once**, on every split, when a
  dataset is materialised (:func:`apply_transform`). It must be deterministic: what it gives
  is exactly what evaluation sees.
- ``train_transform`` (augmentation: random crop, flip) runs **per training batch**, with a
  fresh draw per sample, on new and replayed samples alike (:func:`augment`, applied by
  :meth:`ContinualModule.training_inputs <continual.module.ContinualModule.training_inputs>`);
  validation and test data and the stored tensors are never touched.

Augmentation runs on whole batches, on the batch's device: torchvision's ``RandomCrop``,
``RandomHorizontalFlip`` and ``RandomVerticalFlip`` are converted to their batched twins here
(:class:`BatchRandomCrop`, :class:`BatchRandomFlip`), kornia's augmentation modules and any
:class:`BatchTransform` are used as they are, and any other transform runs sample by sample
(:class:`PerSample`, the slow path). Every draw comes from torch's global RNG (CPU, or the
batch's accelerator), which checkpoints save: a resumed run draws what it would have drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from continual.data.splits import DataSplits
from continual.data.stream import Stream, Task
from continual.data.tensors import PixelNormalization, TensorData, Transform
from continual.errors import ConfigError

if TYPE_CHECKING:  # lazy.py reads inputs through datasets.py, which imports this module
    from continual.data.lazy import LazyData


def compose(spec: Transform | Sequence[Transform] | None) -> Transform | None:
    """One callable from a transform, a list of them (applied in order), or None."""
    if spec is None or callable(spec):
        return spec
    steps = list(spec)
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    from torchvision.transforms import v2

    return v2.Compose(steps)


def apply_transform(data: DataSplits, transform: Transform | Sequence[Transform] | None,
                    chunk: int = 4096) -> DataSplits:
    """``data`` with ``transform`` applied once to the inputs of every split, in chunks.

    A chunk is one call, so a random transform here would treat a whole chunk alike; random
    augmentation belongs in :func:`augment`. Stored pixels are decoded first (the transform
    sees the floats a network would), so the result is held as floats; but a lone
    ``v2.Normalize`` of pixels only scaled to [0, 1] joins their declared normalisation, and
    they stay uint8 (the same floats, decoded per batch). Lazy data is transformed batch by
    batch as it is read (an input map), so ``transform`` must treat each sample alone.
    """
    from continual.data.lazy import LazyData, first_inputs

    transform = compose(transform)
    if transform is None:
        return data
    joined = _joined_normalize(data, transform)
    if joined is not None:
        return joined
    data = decoded(data)

    def apply(part: TensorData | LazyData) -> TensorData | LazyData:
        if isinstance(part, LazyData):
            return _mapped(part, transform)
        if len(part) == 0:
            return TensorData(part.x, part.y, part.t, part.transform)
        try:
            x = torch.cat([transform(part.x[i:i + chunk]) for i in range(0, len(part), chunk)])
        except (TypeError, ValueError, RuntimeError) as e:
            raise ConfigError(f"transform {transform!r} failed on inputs of shape "
                              f"{tuple(part.x.shape[1:])} ({str(e).splitlines()[0]})") from None
        return TensorData(x, part.y, part.t, part.transform)

    train, val, test = apply(data.train), apply(data.val), apply(data.test)
    shape = next((tuple(first_inputs(p).shape[1:]) for p in (train, val, test) if len(p)),
                 data.input_shape)
    return DataSplits(train, val, test, data.n_classes, shape, data.name)


def _mapped(part: LazyData, transform: Transform) -> LazyData:
    """``part`` transformed as it is read; tried on its first input now, so a transform that
    does not fit fails here, in one line, not in a loader worker."""
    from continual.data.lazy import first_inputs

    mapped = part.mapped(transform)
    if len(mapped):
        try:
            first_inputs(mapped)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ConfigError(f"transform {transform!r} failed on inputs of shape "
                              f"{tuple(first_inputs(part).shape[1:])} "
                              f"({str(e).splitlines()[0]})") from None
    return mapped


def augment(stream: Stream, train_transform: Transform | Sequence[Transform] | None) -> Stream:
    """A copy of ``stream`` whose tasks' training data declares ``train_transform`` (made
    batched where it can be, see :func:`batched`) as the augmentation of its batches.

    Only ``task.train`` carries it: evaluation reads ``task.test`` (and strategies read
    ``x``) untouched.
    """
    transform = batched(train_transform)
    if transform is None:
        return stream

    from continual.data.lazy import LazyData

    def set_train(task: Task) -> None:
        train = task.train
        if isinstance(train, LazyData):
            task.train = train.with_transform(transform)
            return
        task.train = TensorData(train.x, train.y, train.t, transform, train.normalization)

    return stream.map_tasks(set_train)


def with_pixels(data: DataSplits, standardize: bool, max_value: float = 255.0,
                min_std: float = 0.1) -> DataSplits:
    """``data`` (integer pixels) declaring how batches become floats: ``x / max_value``, and with
    ``standardize`` each input feature to zero mean, unit variance on the training split.

    The statistics are those :func:`~continual.data.splits.standardize` computes on the float
    copy, so decoded batches hold the floats that copy would.
    """
    mean = std = None
    if standardize:
        x = data.train.x.float().div_(max_value)
        mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True).clamp_min(min_std)
        del x
    normalization = PixelNormalization(mean, std, max_value)
    parts = (TensorData(p.x, p.y, p.t, p.transform, normalization)
             for p in (data.train, data.val, data.test))
    return DataSplits(*parts, data.n_classes, data.input_shape, data.name)


def _joined_normalize(data: DataSplits, transform: Transform) -> DataSplits | None:
    """``data`` declaring ``transform``'s per-channel mean and std, when ``transform`` is a
    ``v2.Normalize`` and ``data`` pixels only scaled so far; else None."""
    from torchvision.transforms import v2

    from continual.data.lazy import LazyData

    normalization = data.train.normalization
    if type(transform) is not v2.Normalize or normalization is None or \
            normalization.mean is not None or len(data.input_shape) != 3:
        return None
    # as torchvision's normalize: float32 statistics, one per channel, [C, 1, 1]
    mean = torch.as_tensor(transform.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(transform.std, dtype=torch.float32).view(-1, 1, 1)
    if len(mean) not in (1, data.input_shape[0]) or len(std) != len(mean) or (std == 0).any():
        return None  # torchvision's own error, from the decoded path
    joined = PixelNormalization(mean, std, normalization.max_value)
    parts = (p.with_normalization(joined) if isinstance(p, LazyData)
             else TensorData(p.x, p.y, p.t, p.transform, joined)
             for p in (data.train, data.val, data.test))
    return DataSplits(*parts, data.n_classes, data.input_shape, data.name)


def decoded(data: DataSplits) -> DataSplits:
    """``data`` with every split's inputs as floats, as a network sees them (a no-op for data
    stored as floats): for scenario builders that compute on pixel values."""
    if all(p.normalization is None for p in (data.train, data.val, data.test)):
        return data
    return DataSplits(data.train.decoded(), data.val.decoded(), data.test.decoded(),
                      data.n_classes, data.input_shape, data.name)


class BatchTransform(nn.Module):
    """A training augmentation of whole batches ``[B, C, H, W]``, drawing per sample.

    Subclass it (``forward(x) -> x``) to declare a transform of your own batched: it is then
    applied as it is, once per batch, instead of sample by sample.
    """


class BatchRandomCrop(BatchTransform):
    """``torchvision.transforms.v2.RandomCrop``, each sample of a batch at its own offset.

    The batch is padded once, then every sample's window is gathered at once from a strided
    view of the padded batch (no Python loop over samples).

    Args:
        size: output ``(height, width)``, or one int for a square.
        padding: added before cropping: an int (all sides), ``[left/right, top/bottom]`` or
            ``[left, top, right, bottom]`` as in torchvision.
        pad_if_needed: pad inputs smaller than ``size`` up to it.
        fill: the value of ``constant`` padding.
        padding_mode: ``constant``, ``edge`` or ``reflect``.
    """

    MODES = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: float = 0.0,
                 padding_mode: str = "constant") -> None:
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ConfigError(f"size={size!r} is invalid; allowed: a positive int or [h, w]")
        if padding_mode not in self.MODES:
            raise ConfigError(f"padding_mode={padding_mode!r} is invalid for a batched crop; "
                              f"allowed: {', '.join(self.MODES)}")
        self.padding = _ltrb(padding)
        self.pad_if_needed, self.fill, self.padding_mode = pad_if_needed, fill, padding_mode

    def forward(self, x: Tensor) -> Tensor:  # [B, C, H, W] -> [B, C, h, w]
        (h, w), (left, top, right, bottom) = self.size, self.padding
        if self.pad_if_needed:  # as torchvision: both sides grow by the shortfall
            dh, dw = max(h - (x.shape[-2] + top + bottom), 0), max(w - (x.shape[-1] + left +
                                                                        right), 0)
            left, right, top, bottom = left + dw, right + dw, top + dh, bottom + dh
        if left or top or right or bottom:
            value = self.fill if self.padding_mode == "constant" else None
            x = F.pad(x, (left, right, top, bottom), self.MODES[self.padding_mode], value)
        free_h, free_w = x.shape[-2] - h, x.shape[-1] - w
        if free_h < 0 or free_w < 0:
            raise ConfigError(f"crop size {(h, w)} is larger than the (padded) input size "
                              f"{tuple(x.shape[-2:])}")
        b = x.shape[0]
        tops = torch.randint(0, free_h + 1, (b,), device=x.device)
        lefts = torch.randint(0, free_w + 1, (b,), device=x.device)
        windows = x.unfold(-2, h, 1).unfold(-2, w, 1)  # [B, C, free_h+1, free_w+1, h, w], a view
        return windows[torch.arange(b, device=x.device), :, tops, lefts]  # [B, C, h, w]

    def extra_repr(self) -> str:
        return f"size={self.size}, padding={self.padding}, padding_mode={self.padding_mode}"


class BatchRandomFlip(BatchTransform):
    """Flip each sample of a batch with probability ``p`` along ``dim`` (-1: horizontally,
    as ``RandomHorizontalFlip``; -2: vertically)."""

    def __init__(self, p: float = 0.5, dim: int = -1) -> None:
        super().__init__()
        self.p, self.dim = p, dim

    def forward(self, x: Tensor) -> Tensor:
        flip = torch.rand(x.shape[0], device=x.device) < self.p  # [B]
        return torch.where(flip.view(-1, *[1] * (x.ndim - 1)), x.flip(self.dim), x)

    def extra_repr(self) -> str:
        return f"p={self.p}, dim={self.dim}"


class PerSample(BatchTransform):
    """A transform of one sample applied to each sample of the batch in turn: the fallback
    for transforms with no batched form (a Python loop, ~0.1 ms a sample)."""

    def __init__(self, transform: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.transform = transform

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([self.transform(xi) for xi in x])

    def extra_repr(self) -> str:
        return "" if isinstance(self.transform, nn.Module) else repr(self.transform)


class BatchSequence(BatchTransform):
    """Batched transforms applied in order."""

    def __init__(self, steps: Sequence[nn.Module]) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)

    def forward(self, x: Tensor) -> Tensor:
        for step in self.steps:
            x = step(x)
        return x


def batched(spec: Transform | Sequence[Transform] | None) -> nn.Module | None:
    """The batched form of an augmentation given as one transform, a list or a ``Compose``.

    Each step is converted on its own: torchvision's random crops (constant, edge or reflect
    padding) and flips become :class:`BatchRandomCrop` / :class:`BatchRandomFlip`; kornia's
    augmentation modules and :class:`BatchTransform` instances are kept; consecutive others run
    together through :class:`PerSample`. Converting twice changes nothing.
    """
    transform = compose(spec)
    if transform is None:
        return None
    steps: list[nn.Module] = []
    loop: list[Transform] = []
    for step in _steps(transform):
        fast = _batched_step(step)
        if fast is None:
            loop.append(step)
            continue
        if loop:
            steps.append(PerSample(compose(loop)))
            loop = []
        if not isinstance(fast, nn.Identity):
            steps.append(fast)
    if loop:
        steps.append(PerSample(compose(loop)))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else BatchSequence(steps)


def _steps(transform: Transform) -> list[Transform]:
    if isinstance(transform, BatchSequence):
        return list(transform.steps)
    inner = getattr(transform, "transforms", None)  # torchvision's Compose, v1 or v2
    if type(transform).__name__ == "Compose" and isinstance(inner, (list, tuple)):
        return [s for t in inner for s in _steps(t)]
    if type(transform) is nn.Sequential:
        return [s for t in transform for s in _steps(t)]
    return [transform]


def _batched_step(step: Transform) -> nn.Module | None:
    """``step`` as a batched transform, or None when it has no batched form here."""
    if isinstance(step, BatchTransform) or type(step).__module__.startswith(
            "kornia.augmentation"):
        return step
    from torchvision.transforms import v2

    if isinstance(step, (nn.Identity, v2.Identity)):
        return nn.Identity()
    if type(step) in (v2.RandomHorizontalFlip, v2.RandomVerticalFlip):
        return BatchRandomFlip(step.p, -1 if type(step) is v2.RandomHorizontalFlip else -2)
    if type(step) is v2.RandomCrop and isinstance(step.fill, (int, float)) and \
            step.padding_mode in BatchRandomCrop.MODES:
        left, right, top, bottom = step.padding or (0, 0, 0, 0)  # torchvision's order
        return BatchRandomCrop(step.size, [left, top, right, bottom], step.pad_if_needed,
                               float(step.fill), step.padding_mode)
    return None


def _ltrb(padding: int | Sequence[int] | None) -> tuple[int, int, int, int]:
    """torchvision's padding forms as ``(left, top, right, bottom)``."""
    if padding is None:
        return (0, 0, 0, 0)
    if isinstance(padding, int):
        return (padding,) * 4
    p = [int(v) for v in padding]
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    if len(p) == 4:
        return (p[0], p[1], p[2], p[3])
    raise ConfigError(f"padding={padding!r} is invalid; allowed: an int, [left/right, "
                      "top/bottom] or [left, top, right, bottom]")
