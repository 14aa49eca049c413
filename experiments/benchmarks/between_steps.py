"""Does a training loop's own Python slow the step it wraps? One module call, timed alone.

    OMP_NUM_THREADS=1 python -m experiments.benchmarks.between_steps     # between_steps.md

Why Lightning's loop costs a small net more than its own Python time: the very same call (a
784-8-10 MLP on one fixed batch of 128, a call PyTorch's Python dispatch dominates) is timed
(a) in a tight loop, (b) after a walk over 5,000 Python dicts, standing in for a framework's
bookkeeping between steps, and (c) as the first thing in the training step of a continual
FineTune fit (Lightning's loop ran just before). Medians over 3 runs × 195 steps. Nothing
global is switched on during a fit (no trace or profile function, torch function mode, global
module hook or autocast: checked by the script), so what differs is the state of the CPU's
caches and predictors that the Python between two calls leaves behind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402
import torch.nn.modules.module as torch_module  # noqa: E402

from continual import ContinualModule, run  # noqa: E402
from continual.strategies import FineTune  # noqa: E402
from experiments.benchmarks import plain  # noqa: E402
from experiments.benchmarks.speed import load_stream, machine, new_net  # noqa: E402
from experiments.record import save  # noqa: E402

HERE = Path(__file__).parent
CASES = ("tight loop", "after a walk over 5,000 dicts", "first thing in a fit's training step")


def global_switches() -> dict:
    """What could slow every call process-wide; all off or empty in both places."""
    return {"trace": sys.gettrace() is not None, "profile": sys.getprofile() is not None,
            "torch_function_mode": torch._C._is_torch_function_mode_enabled(),
            "global_module_hooks": len(torch_module._global_forward_hooks)
            + len(torch_module._global_forward_pre_hooks),
            "autocast": torch.is_autocast_enabled("cpu")}


def measure(runs: int) -> dict:
    probe, x = new_net((8,)), torch.randn(128, 784)
    times: dict[str, list[float]] = defaultdict(list)
    switches: dict[str, dict] = {"outside": global_switches()}

    def call(case: str) -> None:
        start = time.perf_counter()
        probe(x)
        times[case].append(time.perf_counter() - start)

    class Probed(ContinualModule):
        def training_step(self, batch, batch_idx):
            call(CASES[2])
            switches.setdefault("inside", global_switches())
            return super().training_step(batch, batch_idx)

    floats = plain.floats(load_stream())
    junk = [{"a": i, "b": str(i)} for i in range(5000)]
    for r in range(runs):
        run(floats, Probed(new_net((8,)), FineTune()), batch_size=128, echo=None,
            trainer={"max_epochs": 3, "accelerator": "cpu"}, evaluate_untrained=False)
        steps = len(times[CASES[2]]) // (r + 1)  # as many calls as the fit's steps
        for _ in range(steps):
            call(CASES[0])
        for _ in range(steps):
            sum(d["a"] + len(d["b"]) for d in junk)
            call(CASES[1])
    return {"machine": machine(), "switches": switches,
            "median_us": {c: statistics.median(times[c]) * 1e6 for c in CASES},
            "calls": {c: len(times[c]) for c in CASES}}


def report(data: dict) -> str:
    m, us = data["machine"], data["median_us"]
    base = us[CASES[0]]
    lines = ["# One module call, timed alone: in a tight loop, after other Python, inside a fit",
             "", f"`python -m experiments.benchmarks.between_steps`. Machine: {m['cpu']}, "
             f"{m['cores']} cores, {m['threads']} intra-op thread(s), torch {m['torch']}. "
             "A 784-8-10 MLP's forward on one fixed batch of 128; medians of "
             f"{data['calls'][CASES[0]]} calls per case.", "",
             "| where the call runs | median µs | × tight loop |", "| --- | --- | --- |"]
    lines += [f"| {c} | {us[c]:.0f} | {us[c] / base:.2f} |" for c in CASES]
    lines += ["", "Process-wide switches (trace, profile, torch function mode, global module "
              f"hooks, autocast) outside / inside the fit: {data['switches']['outside']} / "
              f"{data['switches'].get('inside')}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.between_steps")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "between_steps.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = measure(args.runs)
    save(args.out, data, report(data))


if __name__ == "__main__":
    main()
