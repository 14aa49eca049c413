"""Tensor-backed labelled data: the in-memory representation every scenario works on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from continual.errors import ConfigError

Transform = Callable[[Tensor], Tensor]


class PixelNormalization:
    """How stored integer pixels become the floats a network sees, batch by batch.

    ``x / max_value``, then, when ``mean`` and ``std`` are given, ``(x - mean) / std``: the
    same operations, in the same order, as converting the whole dataset to float32 once, so a
    batch decoded here holds bit for bit the floats the float32 copy would (at a quarter of
    the memory for uint8 images). ``mean`` and ``std`` broadcast against one batch
    ``[B, *input_shape]`` (per pixel ``[1, C, H, W]``, per channel ``[C, 1, 1]``).

    Args:
        mean: subtracted after scaling (None: no standardisation).
        std: divides after the mean.
        max_value: the largest stored value (255 for 8-bit images).
    """

    def __init__(self, mean: Tensor | None = None, std: Tensor | None = None,
                 max_value: float = 255.0) -> None:
        if (mean is None) != (std is None):
            raise ConfigError("mean and std are given together or not at all")
        self.mean, self.std, self.max_value = mean, std, float(max_value)
        self._on: dict[torch.device, tuple[Tensor, Tensor]] = {}  # mean, std per device

    def __call__(self, x: Tensor) -> Tensor:
        """Float32 inputs ``[B, *input_shape]`` from stored integers, on ``x``'s device."""
        x = x.float().div_(self.max_value)
        if self.mean is None:
            return x
        if x.device not in self._on:  # moved once per device, not every batch
            self._on[x.device] = (self.mean.to(x.device), self.std.to(x.device))
        mean, std = self._on[x.device]
        return x.sub_(mean).div_(std)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_on": {}}  # the device copies are a cache

    def __repr__(self) -> str:
        what = "" if self.mean is None else f", mean/std of shape {tuple(self.mean.shape)}"
        return f"PixelNormalization(max_value={self.max_value:g}{what})"


class TensorData(Dataset):
    """Inputs, labels and task ids held as three aligned tensors.

    Batches are gathered by one index operation (``__getitems__``), not sample by sample, so a
    standard :class:`~torch.utils.data.DataLoader` with :func:`pass_batch` as ``collate_fn``
    batches at the speed of slicing, and Lightning can still swap in a distributed sampler.

    Args:
        x: inputs, shape ``[N, *input_shape]``, any dtype: images are kept as they come
            (uint8), with ``normalization`` saying how they become floats.
        y: integer class labels, shape ``[N]``.
        t: task id of each sample, shape ``[N]``; zeros when omitted.
        transform: training augmentation, declared here and applied by the training step
            (:meth:`ContinualModule.training_inputs <continual.module.ContinualModule>`) to
            whole batches, with fresh randomness per sample, to new and replayed samples alike;
            batches gathered here, and ``x`` itself, are never augmented, so code that reads
            ``x`` directly (evaluation, Fisher estimates, replay buffers) sees clean data.
        normalization: how integer ``x`` become the network's floats (decoded per batch, on
            the batch's device); None for inputs stored as the network takes them.
    """

    def __init__(self, x: Tensor, y: Tensor, t: Tensor | None = None,
                 transform: Transform | None = None,
                 normalization: PixelNormalization | None = None) -> None:
        if len(x) != len(y):
            raise ConfigError(f"x has {len(x)} samples but y has {len(y)}")
        if normalization is not None and x.is_floating_point():
            raise ConfigError(f"x is {x.dtype}, which a pixel normalization does not decode; "
                              "allowed: integer pixels (uint8), or no normalization")
        self.x = x
        self.y = y.long()
        self.t = torch.zeros_like(self.y) if t is None else t.long()
        self.transform = transform
        self.normalization = normalization

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.x[i], self.y[i], self.t[i]

    def __getitems__(self, indices: Sequence[int] | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # The index lives where the data lives: no host-device copy per batch on an accelerator.
        # index_select: a quarter of the time of `x[idx]`'s general advanced indexing here.
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.y.device)
        return tuple(v.index_select(0, idx) for v in (self.x, self.y, self.t))

    @property
    def targets(self) -> Tensor:
        """Class labels, as torchvision datasets name them."""
        return self.y

    @property
    def classes(self) -> list[int]:
        """Sorted distinct labels present."""
        return torch.unique(self.y).tolist()

    def decoded(self) -> TensorData:
        """The same samples with inputs as the network sees them (float, normalised): for
        code that computes on pixel values (rotations, permutations, preprocessing)."""
        if self.normalization is None:
            return self
        x = torch.cat([self.normalization(c) for c in self.x.split(4096)]) if len(self.x) \
            else self.x.float()
        return TensorData(x, self.y, self.t, self.transform)

    def subset(self, index: Tensor) -> TensorData:
        """Samples at a boolean mask or an integer index."""
        return TensorData(self.x[index], self.y[index], self.t[index], self.transform,
                          self.normalization)

    def sample(self, n: int | None, seed: int) -> TensorData:
        """At most ``n`` samples drawn without replacement (all of them when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        generator = torch.Generator().manual_seed(seed)
        return self.subset(torch.randperm(len(self), generator=generator)[:n])

    def with_task(self, task_id: int) -> TensorData:
        """The same samples, all labelled as belonging to ``task_id``."""
        return TensorData(self.x, self.y, torch.full_like(self.y, task_id), self.transform,
                          self.normalization)

    def to(self, device: torch.device | str) -> TensorData:
        """The same data on ``device`` (tensors already there are not copied)."""
        return TensorData(self.x.to(device), self.y.to(device), self.t.to(device), self.transform,
                          self.normalization)

    @staticmethod
    def concat(parts: Sequence[TensorData]) -> TensorData:
        """One dataset holding ``parts`` in order (their training transform and normalization
        must be shared); lazy parts give :class:`~continual.data.lazy.LazyData`."""
        if not all(isinstance(p, TensorData) for p in parts):
            from continual.data.lazy import concat_data

            return concat_data(parts)
        if len(parts) == 1:
            return parts[0]
        if len({id(p.transform) for p in parts}) > 1:
            raise ConfigError("cannot concatenate data with different training transforms")
        if len({id(p.normalization) for p in parts}) > 1:
            raise ConfigError("cannot concatenate data with different pixel normalizations")
        return TensorData(
            torch.cat([p.x for p in parts]),
            torch.cat([p.y for p in parts]),
            torch.cat([p.t for p in parts]),
            parts[0].transform,
            parts[0].normalization,
        )


def pass_batch(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """``collate_fn`` for :class:`TensorData`: its ``__getitems__`` already returns a batch."""
    return batch
