"""Every use of another library's private names, in one place.

The package reaches past public APIs only here, and each name below has a test
(``tests/test_compat.py``) that fails loudly when an upstream release moves it, so an upgrade
breaks one test, not ``import continual``. Imports are lazy: a moved name fails where it is
used, never at import time.

- ``torch._foreach_*``: fused element-wise ops over lists of tensors (one kernel launch for all
  of a model's parameters instead of one per tensor). Stable in use since torch 1.8 and called
  by torch's own optimizers, but underscored; a per-tensor loop stands in when they are gone.
- ``_SubprocessScriptLauncher``: Lightning's launcher for ``strategy="ddp"``, the only launcher
  that keeps the ranks alive across the fits of a stream (see :mod:`continual.distributed`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def foreach_sub(a: Sequence[Tensor], b: Sequence[Tensor]) -> list[Tensor]:
    """``[a_i − b_i]``, new tensors."""
    fused = getattr(torch, "_foreach_sub", None)
    return list(fused(a, b)) if fused else [x - y for x, y in zip(a, b)]


def foreach_copy(a: Sequence[Tensor]) -> list[Tensor]:
    """Copies of ``a``'s tensors (detached from any graph by the caller)."""
    fused = getattr(torch, "_foreach_mul", None)
    return list(fused(a, 1.0)) if fused else [x.clone() for x in a]


def foreach_addcmul_(out: Sequence[Tensor], a: Sequence[Tensor], b: Sequence[Tensor],
                     value: float) -> None:
    """``out_i += value · a_i · b_i`` in place."""
    fused = getattr(torch, "_foreach_addcmul_", None)
    if fused:
        fused(list(out), list(a), list(b), value=value)
        return
    for o, x, y in zip(out, a, b):
        o.addcmul_(x, y, value=value)


def ddp_script_launcher() -> type:
    """Lightning's launcher class for ``strategy="ddp"`` (re-runs the script per local rank)."""
    from lightning.pytorch.strategies.launchers.subprocess_script import (
        _SubprocessScriptLauncher,
    )

    return _SubprocessScriptLauncher
