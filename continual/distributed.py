"""Data-parallel ranks: start them once, split work among them, make their results agree.

A stream calls ``Trainer.fit`` once per task, but the ranks and their process group must live
for the whole stream: the untrained network is evaluated, importances are reduced and
memories are synchronised outside any fit. :func:`launch` starts them before the first fit;
Lightning's own launch in every later fit then finds ``LOCAL_RANK`` set (no new processes)
and the group initialised (reused).

Every other helper is a no-op in a single process (``torch.distributed`` not initialised),
so strategies and the runner call them unconditionally. Each one is a collective under DDP:
every rank must call it, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import torch
import torch.distributed as dist
from lightning.pytorch import Trainer
from lightning.pytorch.strategies import ParallelStrategy
from torch import Tensor
from torch.utils.data import BatchSampler, Sampler

from continual.compat import ddp_script_launcher
from continual.data.tensors import TensorData
from continual.errors import ConfigError

T = TypeVar("T")


def world_size() -> int:
    """Number of ranks (1 when not distributed)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_initialized() else 0


def is_rank_zero() -> bool:
    """Whether this process writes files and logs: only rank 0 does."""
    return rank() == 0


def launch(trainer: Trainer) -> None:
    """Start the other ranks and the process group now, once for the whole stream.

    Under Lightning's launcher (``strategy="ddp"``) rank 0 re-executes the command for the
    other local ranks; under torchrun or SLURM they are already running. Strategies that start
    fresh processes inside each ``fit`` (``ddp_spawn``, ``ddp_fork``, ``ddp_notebook``)
    cannot keep a memory or a matrix across tasks, so they are refused.
    """
    strategy = trainer.strategy
    if not isinstance(strategy, ParallelStrategy) or dist.is_initialized():
        return
    launcher = strategy.launcher
    if launcher is not None and not isinstance(launcher, ddp_script_launcher()):
        raise ConfigError(
            f"trainer.strategy={type(strategy).__name__} with {type(launcher).__name__} starts "
            "new processes in every fit, which loses the run's state between tasks; allowed: "
            "ddp (Lightning's launcher, torchrun or SLURM)")
    if launcher is None:  # ranks created externally (torchrun, SLURM)
        strategy.setup_environment()
    else:
        launcher.launch(strategy.setup_environment)


class RankBatches(Sampler[list[int]]):
    """This rank's share of each batch that ``batches`` draws, the same draws on every rank.

    Given the single-process batch sampler (seeded the same on all ranks), the ranks together
    train on exactly its batches, in its order, each rank on a contiguous share: DDP's average
    of the shares' gradients is the whole batch's gradient (exactly so when the batch size is
    a multiple of the world size), and every rank has as many batches, so none waits forever.
    A batch smaller than the world is padded by repeating its items: no rank gets none.
    """

    def __init__(self, batches: BatchSampler) -> None:
        self.batches = batches
        self.sampler = batches.sampler  # where Lightning finds set_epoch (the epoch's order)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            while len(batch) < world_size():
                batch = batch + batch
            yield batch[shard(len(batch))]


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (a picklable object, e.g. the run folder)."""
    if world_size() == 1:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def shard(n: int) -> slice:
    """This rank's contiguous share of ``n`` items; shares differ in size by at most one."""
    r, w = rank(), world_size()
    return slice(r * n // w, (r + 1) * n // w)


def rank_share(data: TensorData) -> TensorData:
    """This rank's contiguous share of ``data`` (all of it in a single process)."""
    return data.subset(torch.arange(len(data))[shard(len(data))])


def mean_over_ranks(values: dict[str, Tensor], count: int) -> dict[str, Tensor]:
    """Per-rank means combined into the mean over all ranks' samples, on every rank.

    ``Σ_k n_k v_k / Σ_k n_k`` with ``n_k = count`` samples behind rank ``k``'s ``v_k``: a
    Fisher or MAS importance computed on each rank's shard becomes the full data's. Summed in
    float64 in one all-reduce; all ranks receive the same tensors.
    """
    if world_size() == 1 or not values:
        return values
    names = list(values)
    device = _comm_device(values[names[0]].device)
    flat = torch.cat([values[n].detach().to(device, torch.float64).flatten() * count
                      for n in names]
                     + [torch.tensor([float(count)], dtype=torch.float64, device=device)])
    dist.all_reduce(flat)
    total = flat[-1].clamp_min(1.0)
    out, offset = {}, 0
    for n in names:
        size = values[n].numel()
        mean = (flat[offset:offset + size] / total).view_as(values[n])
        out[n] = mean.to(values[n].device, values[n].dtype)
        offset += size
    return out


def sum_over_ranks(value: Tensor) -> Tensor:
    """Element-wise sum of ``value`` over ranks (e.g. correct predictions and sample counts)."""
    if world_size() == 1:
        return value
    summed = value.to(_comm_device(value.device), copy=True)
    dist.all_reduce(summed)
    return summed.to(value.device)


def any_rank(flag: bool, device: torch.device | None = None) -> bool:
    """Whether ``flag`` holds on some rank: lets every rank stop together, none left waiting."""
    if world_size() == 1:
        return flag
    return bool(sum_over_ranks(torch.tensor([int(flag)], device=device)).item() > 0)


def gather_rows(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Every rank's rows, concatenated in rank order; ranks may hold different row counts."""
    if world_size() == 1:
        return tensors
    device = _comm_device(tensors[0].device)
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([len(tensors[0])], device=device))
    counts = [int(s) for s in sizes]
    longest = max(counts)
    out = []
    for t in tensors:
        padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=device)
        padded[: len(t)] = t
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        out.append(torch.cat([p[:c] for p, c in zip(parts, counts)]).to(t.device))
    return tuple(out)


def _comm_device(device: torch.device) -> torch.device:
    """Where the backend can communicate ``device``'s tensors: NCCL only moves GPU memory."""
    if dist.get_backend() == "nccl" and device.type != "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return device
