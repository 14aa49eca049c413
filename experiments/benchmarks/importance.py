"""What an importance (EWC's Fisher, MAS) costs: the layer hooks against torch.func, and EWC
runs against a plain fine-tuning loop.

    python -m experiments.benchmarks.importance                 # both parts: importance.md
    python -m experiments.benchmarks.importance --quick --out /tmp/importance.md  # smoke test

Run from the repository root. Two parts:

1. **512 samples of the reduced ResNet-18** (``continual.nets.ResNet18``, nf=20, 3x32x32
   random inputs, 10 classes, batch norms in eval mode): each importance (Fisher true,
   empirical, sampled; MAS) by the layer hooks (``per_sample_sums``, new) and by
   ``torch.func`` per-sample gradients (``per_sample_grads``, the old path for any conv
   net), against one training epoch over the same 512 samples (Adam 1e-3, train mode).
2. **EWC runs on Split-MNIST** (the offline MNIST test set, 8,000 train / 2,000 test, seed 0,
   5 tasks of 2 classes, class-incremental; Adam 1e-3, batch 128, 3 epochs a task) with the
   small CNN (``ConvNet``) and the MLP 784-400-400-10: the toolkit's whole ``run()`` (training,
   the Fisher, evaluation after every task) for EWC with each Fisher against the plain
   fine-tuning loop of ``experiments/benchmarks/plain.py`` (training and the same
   evaluation), alternating, median of the per-repeat ratios.

Times are wall-clock and process CPU seconds; on a shared machine the CPU times are the
steadier (the report gives the load average).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # a CPU benchmark: no NVML probe per step

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from continual import ContinualModule, run  # noqa: E402
from continual.data import TensorData, idx_folder, split_classes  # noqa: E402
from continual.nets import MLP, ConvNet, ResNet18  # noqa: E402
from continual.strategies import EWC, FineTune, importance  # noqa: E402
from experiments.benchmarks import plain  # noqa: E402

HERE = Path(__file__).parent
MNIST = HERE.parents[1].parent / "shared" / "data" / "mnist-t10k"
MODES = ["true", "empirical", "sampled", "mas"]


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def timed(work: Callable[[], object]) -> tuple[float, float, object]:
    """(wall s, CPU s, result) of ``work()``."""
    start = clock()
    out = work()
    end = clock()
    return end[0] - start[0], end[1] - start[1], out


def by_torch_func(work: Callable[[], object]) -> object:
    """``work()`` with the hooks switched off: every importance through torch.func."""
    hooks = importance.per_sample_sums
    importance.per_sample_sums = lambda *args, **kwargs: None
    try:
        return work()
    finally:
        importance.per_sample_sums = hooks


# ---------------------------------------------------------------- part 1: ResNet-18

def measure(net: torch.nn.Module, data: TensorData, mode: str) -> dict[str, torch.Tensor]:
    if mode == "mas":
        return importance.output_norm_importance(net, data)
    return importance.fisher_diagonal(net, data, mode=mode, seed=0)


def train_epoch(net: torch.nn.Module, data: TensorData, batch_size: int) -> None:
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for s in range(0, len(data), batch_size):
        loss = F.cross_entropy(net(data.x[s:s + batch_size]), data.y[s:s + batch_size])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def relative_l1(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(sum((a[n] - b[n]).abs().sum() for n in b) / sum(b[n].abs().sum() for n in b))


def resnet_part(n: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,),
                                                                            generator=g))
    torch.manual_seed(0)
    net = ResNet18()
    train_epoch(net, data, 128)  # warm-up; batch norms with running statistics
    out: dict = {"n": n, "params": sum(p.numel() for p in net.parameters()), "epoch": {}}
    for batch in (32, 128):
        epoch = partial(train_epoch, net, data, batch)
        runs = [timed(epoch)[:2] for _ in range(repeats)]
        out["epoch"][batch] = [statistics.median(v) for v in zip(*runs)]
        print(f"epoch batch {batch}: {out['epoch'][batch]}", flush=True)
    results: dict = {}
    for mode in MODES:
        times = (1 if mode == "true" else repeats)  # the true Fisher: ten times the others
        work = partial(measure, net, data, mode)
        new = [timed(work) for _ in range(times)]
        old = [timed(partial(by_torch_func, work)) for _ in range(times)]
        results[mode] = {
            "new": [statistics.median(r[i] for r in new) for i in (0, 1)],
            "old": [statistics.median(r[i] for r in old) for i in (0, 1)],
            "difference": relative_l1(new[0][2], old[0][2]),
            "values": new[0][2],
        }
        print(mode, {k: v for k, v in results[mode].items() if k != "values"}, flush=True)
    out["modes"] = results
    out["sampled_vs_true"] = relative_l1(results["sampled"]["values"],
                                         results["true"]["values"])
    out["empirical_vs_true"] = relative_l1(results["empirical"]["values"],
                                           results["true"]["values"])
    return out


# ---------------------------------------------------------------- part 2: EWC runs

def new_net(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)  # the same initial weights for every variant
    return ConvNet() if kind == "ConvNet" else MLP(784, (400, 400), 10)


def toolkit_run(stream, kind: str, strategy, epochs: int) -> dict:
    wall, cpu, result = timed(lambda: run(stream, ContinualModule(new_net(kind), strategy),
                                          batch_size=128, echo=None,
                                          trainer={"max_epochs": epochs, "accelerator": "cpu"}))
    return {"wall": wall, "cpu": cpu, "fisher": sum(c.strategy_seconds for c in result.cost),
            "accuracy": float(result.matrix[-1].mean())}


def plain_run(stream, kind: str, epochs: int) -> dict:
    wall, cpu, costs = timed(lambda: plain.plain_run(stream, new_net(kind), plain.Recipe(),
                                                     epochs, 128))
    row = costs[-1]["row"]
    return {"wall": wall, "cpu": cpu, "fisher": 0.0, "accuracy": sum(row) / len(row)}


def variants(kind: str) -> dict[str, Callable]:
    out: dict[str, Callable] = {
        "plain fine-tuning loop": lambda s, e: plain_run(s, kind, e),
        "toolkit FineTune": lambda s, e: toolkit_run(s, kind, FineTune(), e),
        "EWC sampled (default)": lambda s, e: toolkit_run(s, kind, EWC(30.0), e),
        "EWC empirical": lambda s, e: toolkit_run(s, kind, EWC(30.0, "empirical"), e),
        "EWC true": lambda s, e: toolkit_run(s, kind, EWC(30.0, "true"), e),
    }
    if kind == "ConvNet":  # the MLP's true Fisher took the linear shortcut before too
        out["EWC true, torch.func (before)"] = lambda s, e: by_torch_func(
            lambda: toolkit_run(s, kind, EWC(30.0, "true"), e))
    return out


def ewc_part(repeats: int, epochs: int, tasks: int) -> dict:
    data = idx_folder(MNIST, val_fraction=0.0, test_fraction=0.2, seed=0)
    stream = split_classes(data, n_tasks=5, scenario="class")
    stream = type(stream)(stream.tasks[:tasks], stream.scenario, stream.n_classes,
                          stream.input_shape)
    warm = type(stream)(stream.tasks[:2], stream.scenario, stream.n_classes, stream.input_shape)
    toolkit_run(warm, "MLP", EWC(), 1)  # imports, first fits
    out: dict = {}
    for kind in ("ConvNet", "MLP"):
        runs = {name: [] for name in variants(kind)}
        for r in range(repeats):
            order = list(runs) if r % 2 == 0 else list(runs)[::-1]
            for name in order:
                runs[name].append(variants(kind)[name](stream, epochs))
                print(kind, r, name, runs[name][-1], flush=True)
        out[kind] = runs
    return out


# ---------------------------------------------------------------- the report

def machine() -> dict:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return {"cpu": cpu.group(1) if cpu else platform.processor(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version()}


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=HERE)
    return out.stdout.strip() or "unknown"


def load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def report(info: dict, resnet: dict | None, ewc: dict | None, args) -> str:
    m = info["machine"]
    lines = ["# What an importance costs: layer hooks against torch.func, EWC against a plain "
             "loop\n",
             f"`python -m experiments.benchmarks.importance --repeats {args.repeats}` at commit "
             f"`{info['commit']}`. Machine: "
             f"{m['cpu']}, {m['cores']} cores, **{m['threads']} intra-op thread**, torch "
             f"{m['torch']}, Python {m['python']}; load average (1 / 5 / 15 min) "
             f"{info['load_start']} at start, {info['load_end']} at end: the machine was shared "
             "with other jobs, so wall times are inflated and noisy; process CPU times are the "
             "steadier measure.\n"]
    if resnet:
        e32, e128 = resnet["epoch"][32], resnet["epoch"][128]
        lines += [
            f"## {resnet['n']} samples of the reduced ResNet-18\n",
            f"`ResNet18()` (nf=20, {resnet['params']:,} weights), {resnet['n']} random "
            "3x32x32 inputs, 10 classes, batch norms in eval mode (running statistics), "
            "importances in chunks of 64. *Old*: per-sample gradients by torch.func (`vmap` "
            "over `grad`), what every conv net took before; *new*: the layer hooks. One "
            f"training epoch over the same samples (Adam, train mode): {e128[0]:.1f} s wall / "
            f"{e128[1]:.1f} s CPU at batch 128, {e32[0]:.1f} s / {e32[1]:.1f} s at batch 32. "
            f"Medians of {args.repeats} (the true Fisher: 1 run each).\n",
            "| importance | old s (wall / CPU) | new s (wall / CPU) | speed-up (CPU) | new ÷ "
            "epoch at batch 128 (CPU) | old vs new, relative L1 |",
            "| --- | --- | --- | --- | --- | --- |"]
        names = {"true": "Fisher, true (exact)", "empirical": "Fisher, empirical",
                 "sampled": "Fisher, sampled", "mas": "MAS"}
        for mode, r in resnet["modes"].items():
            lines.append(
                f"| {names[mode]} | {r['old'][0]:.1f} / {r['old'][1]:.1f} | {r['new'][0]:.1f} "
                f"/ {r['new'][1]:.1f} | {r['old'][1] / r['new'][1]:.1f}× | "
                f"{r['new'][1] / e128[1]:.2f} | {r['difference']:.1e} |")
        lines += ["", "The importances are measured after those epochs (the net has fit its "
                  f"{resnet['n']} samples). Old and new differ by float32 rounding (relative L1 "
                  "in the last column). Spread of the cheap estimates around the exact true "
                  "Fisher on these samples (relative L1 distance): sampled "
                  f"{resnet['sampled_vs_true']:.2f} (one drawn label per sample: noise, no "
                  f"bias), empirical {resnet['empirical_vs_true']:.2f} (the observed labels: "
                  "biased).\n"]
    if ewc:
        lines += [f"## EWC runs on Split-MNIST, {args.epochs} epochs a task\n",
                  "Whole run: the toolkit's `run()` (Trainer, training, the Fisher after each "
                  "task, evaluation on every task's test set) against the plain fine-tuning "
                  "loop's training and the same evaluation. *× plain* = median over repeats "
                  "of the run's time ÷ the plain loop's time in the same repeat (CPU; wall in "
                  "brackets), the issue's measure; *× FineTune*: the same against the toolkit's "
                  "own fine-tuning run, which is faster than the plain loop here. *Fisher* = "
                  "the strategy's own seconds (wall), all tasks. λ = 30, 512 samples a task. "
                  "Accuracy: average over the 5 tasks at the end (class-incremental: EWC "
                  "barely helps, whatever the Fisher).\n",
                  "| net | run | × plain, CPU (wall) | × FineTune, CPU | run s, CPU | Fisher s "
                  "| accuracy % |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for kind, runs in ewc.items():
            base, tuned = runs["plain fine-tuning loop"], runs["toolkit FineTune"]
            for name, rows in runs.items():
                cpu = statistics.median(r["cpu"] / b["cpu"] for r, b in zip(rows, base))
                wall = statistics.median(r["wall"] / b["wall"] for r, b in zip(rows, base))
                own = statistics.median(r["cpu"] / b["cpu"] for r, b in zip(rows, tuned))
                lines.append(
                    f"| {kind} | {name} | {cpu:.2f}× ({wall:.2f}×) | {own:.2f}× | "
                    f"{statistics.median(r['cpu'] for r in rows):.1f} | "
                    f"{statistics.median(r['fisher'] for r in rows):.2f} | "
                    f"{100 * statistics.median(r['accuracy'] for r in rows):.1f} |")
        lines.append("")
    if resnet:
        modes, epoch = resnet["modes"], resnet["epoch"][128][1]
        gains = [r["old"][1] / r["new"][1] for r in modes.values()]
        lines += ["## Reading\n",
                  "- The hooks compute the same importances as per-sample gradients by "
                  f"torch.func, {min(gains):.1f}–{max(gains):.1f}× faster on the ResNet; what "
                  "made EWC expensive was the exact true Fisher's backward pass per class (ten "
                  "here), on any path.",
                  "- One drawn label per sample (`fisher=\"sampled\"`) estimates the same "
                  "true Fisher without bias at the cost of the empirical one, "
                  f"{modes['sampled']['new'][1] / epoch:.1f} training epochs of the same "
                  "samples on the ResNet: EWC's default, with the exact `\"true\"` and "
                  "`\"empirical\"` kept as options.\n"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.importance",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="epochs a task (Split-MNIST)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--part", choices=["resnet", "ewc", "all"], default="all")
    parser.add_argument("--quick", action="store_true",
                        help="64 ResNet samples, 2 tasks, 1 epoch, 1 repeat: a smoke test")
    parser.add_argument("--out", default=str(HERE / "importance.md"))
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.epochs = 1, 1
    torch.set_num_threads(args.threads)
    info = {"machine": machine(), "load_start": load(), "commit": commit()}
    print(info, flush=True)
    resnet = (resnet_part(64 if args.quick else 512, args.repeats)
              if args.part in ("resnet", "all") else None)
    ewc = (ewc_part(args.repeats, args.epochs, 2 if args.quick else 5)
           if args.part in ("ewc", "all") else None)
    info["load_end"] = load()
    Path(args.out).write_text(report(info, resnet, ewc, args))
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
