"""The training step's paths against the plain loop, many short alternations.

    python experiments/benchmarks/step_paths.py      # writes before_after/step_paths.md

One Split-MNIST task (FineTune, MLP 784-400-400-10, batch 128, 5 epochs, 65 steps), its epochs
only (no ``Trainer()`` or fit set-up), in three forms that run back to back, in alternating
order, ``--pairs`` times: the plain loop of ``plain.py``; the toolkit as it is (the module
steps its optimizer itself and, as nothing listens to the backward and step hooks, calls
backward and the optimizer directly); the toolkit with Lightning's manual step forced
(``manual_backward`` and Lightning's optimizer wrapper, as the module stepped before the
direct path, and as it still does when a callback listens); the toolkit with Lightning's
automatic optimisation forced (its closure, as the module ran before its own step, and as it
still runs under gradient clipping or accumulation). Also: the two ways of gathering a batch.
Ratios are medians of the per-alternation ratios to the plain loop (interquartile range in
brackets): single runs on a shared machine vary by ±20 %, paired neighbours far less.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # as in speed.py

import torch  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import speed  # noqa: E402

import continual.module  # noqa: E402
from continual import ContinualModule  # noqa: E402

OWN_STEP = ContinualModule.automatic_optimization
PLAN_STEP = continual.module.plan_step


def lightning_manual_step(*args, **kwargs):
    """The toolkit with Lightning's manual step forced (no direct backward and update)."""
    continual.module.plan_step = lambda *a: dataclasses.replace(PLAN_STEP(*a), direct=False)
    try:
        return speed.toolkit(*args, **kwargs)
    finally:
        continual.module.plan_step = PLAN_STEP


def closure(*args, **kwargs):
    """The toolkit with Lightning's automatic optimisation forced."""
    ContinualModule.automatic_optimization = property(lambda self: True)
    try:
        return speed.toolkit(*args, **kwargs)
    finally:
        ContinualModule.automatic_optimization = OWN_STEP


def gather_costs(repeats: int = 2000) -> dict[str, float]:
    """µs per batch of 128 MNIST-sized rows out of 8,000: ``x[idx]`` against index_select."""
    x, idx = torch.randn(8000, 784), torch.randperm(8000)[:128]
    out = {}
    for name, gather in (("x[idx]", lambda: x[idx]),
                         ("x.index_select(0, idx)", lambda: x.index_select(0, idx))):
        gather()
        start = time.perf_counter()
        for _ in range(repeats):
            gather()
        out[name] = (time.perf_counter() - start) / repeats * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--out", default=str(HERE / "before_after" / "step_paths.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    stream = speed.load_stream()
    forms = [("plain loop", speed.baseline), ("toolkit, direct step (now)", speed.toolkit),
             ("toolkit, Lightning's manual step (before the direct step)", lightning_manual_step),
             ("toolkit, Lightning's closure (before the own step)", closure)]
    for _, go in forms:  # warm-up: a process's first fits are slower
        go(stream, "FineTune", 1, 128, tasks=2)
    ratios: dict[str, list[float]] = {name: [] for name, _ in forms}
    load = os.getloadavg()
    for r in range(args.pairs):
        seconds = {}
        for name, go in (forms if r % 2 == 0 else forms[::-1]):
            cost = go(stream, "FineTune", 5, 128, tasks=1)[0][0]
            seconds[name] = cost["train"] if name == "plain loop" else cost["loop"]
        for name in seconds:
            ratios[name].append(seconds[name] / seconds["plain loop"])
    machine = speed.machine()
    lines = ["# The training step's paths against the plain loop\n",
             f"FineTune, one Split-MNIST task (65 steps of 128, 5 epochs), epochs only, "
             f"{args.pairs} alternations; {machine['cpu']}, {machine['cores']} cores, one "
             f"intra-op thread, torch {machine['torch']}; load average {load[0]:.2f} at the "
             f"start, {os.getloadavg()[0]:.2f} at the end.\n",
             "| form | time ÷ plain loop, median (IQR) |", "| --- | --- |"]
    for name, values in ratios.items():
        q = statistics.quantiles(values)
        lines.append(f"| {name} | {statistics.median(values):.3f} ({q[0]:.3f}–{q[2]:.3f}) |")
    lines += ["\nGathering a batch of 128 rows out of 8,000 × 784 (µs, mean of 2,000):\n", "| gather | µs |", "| --- | --- |"]
    lines += [f"| `{name}` | {us:.1f} |" for name, us in gather_costs().items()]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
