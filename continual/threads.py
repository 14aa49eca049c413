"""How many intra-op threads a CPU run uses, chosen for the network unless the user says.

Small networks spend a step in many tiny kernels; on a few cores, more than one thread adds
synchronisation per kernel and, when the cores are shared, threads spinning against each other:
on the 2-core benchmark machine a FineTune run of an MLP took 18–39 s with two threads on a busy
host against ~1.4 s with one (experiments/benchmarks/speed_2threads.md). Large networks have
kernels big enough to split, and keep torch's default (every core).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from continual.errors import ConfigError

SMALL_NET = 2_000_000  # parameters: below this a CPU run uses one intra-op thread
_USER_SET = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def choose_threads(net: nn.Module, threads: int | None = None) -> int:
    """Set and return torch's intra-op threads: ``threads`` when given, torch's own choice
    when ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` is set, else 1 for a net under
    :data:`SMALL_NET` parameters and every core otherwise."""
    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads} is invalid; allowed: 1 or more")
    if threads is None and any(os.environ.get(v) for v in _USER_SET):
        return torch.get_num_threads()
    if threads is None:
        small = sum(p.numel() for p in net.parameters()) < SMALL_NET
        threads = 1 if small else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads
