"""Where the toolkit's remaining overhead over the plain loop goes: cProfile of both, by area.

    python experiments/benchmarks/overhead_profile.py   # writes profile.md next to this file

Fine-tuning on Split-MNIST (5 tasks x 5 epochs, batch 128, 325 steps), one intra-op thread,
once with the MLP 784-400-400-10 of the benchmark and once with a 784-8-10 one, whose
arithmetic is negligible so that what is left is per-step overhead. Unprofiled times first
(median of alternating repeats, per step), then cProfile's own time per step grouped by where
the code lives. cProfile slows Python-heavy code more than C++ kernels, so its per-area
figures overstate the Python parts; the unprofiled difference is the real overhead.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # as in speed.py

import torch  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import speed  # noqa: E402

from continual.nets import MLP  # noqa: E402

EPOCHS, STEPS = 5, None  # STEPS: filled from the stream


def area(filename: str, name: str) -> str:
    if filename == "~":  # C functions: the torch kernels and bindings, or Python builtins
        return "torch kernels (C++)" if "torch" in name or "Tensor" in name else "Python builtins"
    for key, label in (("lightning", "Lightning loop and hooks"),
                       ("torch/optim", "torch.optim (Python)"),
                       ("torch/utils/data", "DataLoader"),
                       ("torch/nn", "torch.nn modules (Python)"),
                       ("torch", "other torch Python"),
                       ("/continual/", "continual (module, strategy, runner)"),
                       ("benchmarks/plain.py", "plain loop"),
                       ("benchmarks/speed.py", "benchmark harness")):
        if key in filename:
            return label
    return "other Python (stdlib)"


def profiled(go, stream) -> tuple[Counter, list]:
    profile = cProfile.Profile()
    profile.enable()
    go(stream, "FineTune", EPOCHS, 128)
    profile.disable()
    stats = pstats.Stats(profile).stats
    by_area: Counter = Counter()
    rows = []
    for (filename, line, name), (_, calls, own, _cumulative, _) in stats.items():
        by_area[area(filename, name)] += own
        rows.append((own, calls, f"{Path(filename).name}:{line}({name})" if filename != "~"
                     else name))
    return by_area, sorted(rows, reverse=True)


def unprofiled(stream, repeats: int = 5) -> tuple[float, float]:
    toolkit, plain = [], []
    for r in range(repeats):
        pair = (("t", speed.toolkit), ("p", speed.baseline))
        for key, go in (pair if r % 2 == 0 else pair[::-1]):
            costs = go(stream, "FineTune", EPOCHS, 128)[0]
            train = sum(c["loop"] if key == "t" else c["train"] for c in costs)
            (toolkit if key == "t" else plain).append(train / STEPS * 1e6)
    return statistics.median(toolkit), statistics.median(plain)


def main() -> None:
    global STEPS
    torch.set_num_threads(1)
    stream = speed.load_stream()
    STEPS = sum(-(-len(t.train) // 128) for t in stream) * EPOCHS
    lines = ["# Where the remaining overhead goes\n",
             f"Fine-tuning, Split-MNIST, {EPOCHS} epochs x 5 tasks = {STEPS} steps of 128, one "
             f"intra-op thread, {speed.machine()['cpu']}; load average at start "
             f"{os.getloadavg()[0]:.2f}. Per-step figures in µs. *Toolkit loop* is Lightning's "
             "epochs only (first epoch start to last epoch end; `Trainer()`, fit set-up and "
             "tear-down are the fixed costs of `speed.md`); *plain* the hand-written loop.\n"]
    for label, hidden in (("MLP 784-400-400-10 (the benchmark)", (400, 400)),
                          ("MLP 784-8-10 (arithmetic negligible: overhead only)", (8,))):
        speed.new_net = lambda hidden=hidden: (torch.manual_seed(0), MLP(784, hidden, 10))[1]
        speed.toolkit(stream, "FineTune", 1, 128, tasks=2)  # warm-up
        speed.baseline(stream, "FineTune", 1, 128, tasks=2)
        t, p = unprofiled(stream)
        tk_areas, tk_rows = profiled(speed.toolkit, stream)
        pl_areas, _ = profiled(speed.baseline, stream)
        lines += [f"\n## {label}\n",
                  f"Unprofiled, median of 5 alternating repeats: toolkit loop **{t:,.0f}** µs "
                  f"per step, plain **{p:,.0f}**, overhead **{t - p:,.0f}** µs per step "
                  f"({t / p:.3f}×).\n",
                  "cProfile own time per step by area (whole run, fixed costs and evaluation "
                  "included):\n",
                  "| area | toolkit | plain | difference |", "| --- | --- | --- | --- |"]
        for name in sorted(set(tk_areas) | set(pl_areas), key=lambda a: -tk_areas[a]):
            a, b = tk_areas[name] / STEPS * 1e6, pl_areas[name] / STEPS * 1e6
            if max(a, b) >= 5:
                lines.append(f"| {name} | {a:,.0f} | {b:,.0f} | {a - b:+,.0f} |")
        lines += ["\nTop functions of the toolkit run outside torch kernels, by own time:\n",
                  "| function | calls per step | own µs per step |", "| --- | --- | --- |"]
        shown = 0
        for own, calls, where in tk_rows:
            if shown == 12:
                break
            if "torch._C" in where or "TensorBase" in where or "plain.py" in where:
                continue
            lines.append(f"| `{where}` | {calls / STEPS:.1f} | {own / STEPS * 1e6:,.0f} |")
            shown += 1
        print("\n".join(lines), flush=True)
    (HERE / "profile.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
