"""Training batches of in-memory data: the epoch's order, cut into index tensors, gathered.

The runner's training loaders. A ``torch.utils.data.DataLoader`` would add worker, pinning and
collation machinery per batch (~80 µs a batch here) that tensors already in memory never use;
:class:`TensorLoader` is the bare iteration Lightning needs: ``__iter__``, ``__len__``, and the
``sampler`` / ``batch_sampler`` attributes where Lightning finds ``set_epoch``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler

from continual.data.tensors import TensorData


class EpochShuffle(Sampler[int]):
    """A permutation of ``range(n)`` that depends on ``(seed, epoch)`` only.

    Lightning calls :meth:`set_epoch` before every epoch, also when it resumes a task from a
    mid-task checkpoint at epoch ``e``: the loader then yields epoch ``e``'s order, whatever
    ran in this process before (a generator carried across epochs would restart at epoch 0).
    Lightning's epochs count over all the fits of its Trainer; ``first_epoch`` is where this
    task's fit started, so ``epoch`` counts within the task.
    """

    def __init__(self, n: int, seed: int, first_epoch: int = 0) -> None:
        self.n, self.seed, self.first_epoch, self.epoch = n, seed, first_epoch, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch - self.first_epoch

    def __len__(self) -> int:
        return self.n

    def order(self) -> Tensor:
        """This epoch's permutation, as a tensor."""
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        return torch.randperm(self.n, generator=generator)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())


class TensorBatches(Sampler[Tensor]):
    """``sampler``'s epoch order cut into batches of indices held as tensors.

    A standard ``BatchSampler`` builds a Python list per batch that the data then converts
    back into a tensor; here each batch is a view of the epoch's permutation, and
    :meth:`TensorData.__getitems__` gathers it with one ``index_select``.
    """

    def __init__(self, sampler: EpochShuffle, batch_size: int) -> None:
        self.sampler, self.batch_size = sampler, batch_size  # Lightning finds set_epoch here

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        # A generator: the order is drawn at the first batch, after Lightning's set_epoch
        # (on resume Lightning creates the loader's iterator before it sets the epoch).
        yield from self.sampler.order().split(self.batch_size)


class TensorLoader(Iterable[tuple[Tensor, ...]]):
    """The batches of ``dataset`` that ``batch_sampler`` draws, each gathered at once.

    Args:
        dataset: the data (``dataset`` as on a ``DataLoader``, for callbacks that read it).
        batch_sampler: yields each batch's indices (a tensor or a list); its ``sampler``
            attribute, if any, is where Lightning calls ``set_epoch``.
    """

    def __init__(self, dataset: TensorData, batch_sampler: Iterable[Tensor | Sequence[int]]
                 ) -> None:
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.sampler = getattr(batch_sampler, "sampler", None)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        for indices in self.batch_sampler:
            yield self.dataset.__getitems__(indices)
