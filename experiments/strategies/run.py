"""Every strategy on every benchmark, several seeds: the table in ``results.md``.

    python -m experiments.strategies.run                       # everything (about an hour on 2 cores)
    python -m experiments.strategies.run --benchmarks split_digits_class --seeds 0

Runs go through the same config files and code path as ``continual run``; each finished run
is appended to ``runs.jsonl`` so an interrupted sweep keeps what it measured, and the table
is rebuilt from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from continual.config import run_parser
from continual.experiment import run_experiment

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist-t10k"

BENCHMARKS = {
    "split_digits_class": ["configs/experiments/split_digits.yaml"],
    "split_digits_task": ["configs/experiments/split_digits.yaml",
                          "configs/data/split_digits_task.yaml"],
    "permuted_digits": ["configs/experiments/split_digits.yaml", "configs/data/permuted_digits.yaml"],
    "split_mnist_class": ["configs/experiments/split_digits.yaml", "configs/data/split_mnist.yaml"],
    "split_mnist_task": ["configs/experiments/split_digits.yaml",
                         "configs/data/split_mnist_task.yaml"],
}
STRATEGIES = ["finetune", "full_retrain", "joint", "ewc", "online_ewc", "si", "mas", "lwf",
              "er", "agem", "der", "derpp", "er_ace", "gdumb", "ewc_replay", "mir", "rwalk",
              "bic", "lucir", "packnet", "gem", "icarl", "xder", "simplecil", "ranpac", "fecam",
              "pnn"]
# Rows of one sweep share this tag: its times are compared with its own FineTune rows.
SWEEP = os.environ.get("SWEEP", time.strftime("%Y-%m-%d"))
TASK_ONLY = {"packnet", "pnn"}  # need the task identity at test time


def applies(strategy: str, benchmark: str) -> bool:
    """Whether ``strategy`` runs on ``benchmark`` (task-only methods on task-IL streams)."""
    return strategy not in TASK_ONLY or benchmark.endswith("_task")


def run_one(benchmark: str, strategy: str, seed: int, out: Path) -> dict:
    parser = run_parser()
    argv = [arg for config in BENCHMARKS[benchmark] for arg in ("--config", str(ROOT / config))]
    argv += ["--config", str(ROOT / "configs" / "strategy" / f"{strategy}.yaml"),
             "--seed", str(seed), "--quiet", "true", "--logger", "[]", "--output", str(out)]
    if "mnist" in benchmark:
        argv += ["--data.init_args.dataset.init_args.root", str(MNIST)]
    cfg = parser.parse_args(argv)
    result = run_experiment(parser, cfg, show_table=False)
    return {"benchmark": benchmark, "strategy": strategy, "seed": seed, "sweep": SWEEP,
            **result.summary}


def table(rows: list[dict]) -> str:
    lines = []
    for benchmark in BENCHMARKS:
        mine = [r for r in rows if r["benchmark"] == benchmark]
        if not mine:
            continue
        # times compare with FineTune of the same sweep only (another sweep: another load)
        base = {}
        for r in mine:
            if r["strategy"] == "finetune":
                base.setdefault(r.get("sweep"), []).append(r["train_seconds"])
        lines += [f"\n### {benchmark}\n",
                  "| strategy | avg acc % | BWT % | forgetting % | train time / FineTune | seeds |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for strategy in STRATEGIES:
            runs = [r for r in mine if r["strategy"] == strategy]
            if not runs:
                continue
            runs = [r for r in runs if r.get("sweep") == runs[-1].get("sweep")]  # the latest

            def ms(key, scale=100.0, runs=runs):
                v = np.array([r[key] for r in runs], dtype=float) * scale
                return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v[0]:.1f}"

            sweep = runs[-1].get("sweep")
            ratio = (f"{np.mean([r['train_seconds'] for r in runs]) / np.mean(base[sweep]):.2f}×"
                     if sweep in base else "n/a")
            lines.append(f"| {strategy} | {ms('average_accuracy')} | {ms('backward_transfer')} | "
                         f"{ms('forgetting')} | {ratio} | {len(runs)} |")
    return "\n".join(lines)


def arguments(module: str, description: str, strategies: list[str], benchmarks: list[str],
              log: Path) -> argparse.Namespace:
    """A sweep's command line (``python -m module``): which benchmarks, strategies and seeds,
    and its log file."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--benchmarks", default=",".join(benchmarks))
    parser.add_argument("--strategies", default=",".join(strategies))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--log", default=str(log))
    return parser.parse_args()


def sweep(args: argparse.Namespace) -> Path:
    """Every strategy × benchmark × seed of ``args``, each row appended to its log as it
    finishes (an interrupted sweep keeps what it measured); the log."""
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    log = Path(args.log)
    out = Path(tempfile.mkdtemp(prefix="continual-strategies-"))
    for benchmark in args.benchmarks.split(","):
        if "mnist" in benchmark and not MNIST.is_dir():
            print(f"skipping {benchmark}: {MNIST} is absent", file=sys.stderr)
            continue
        for strategy in (s for s in args.strategies.split(",") if applies(s, benchmark)):
            for seed in map(int, args.seeds.split(",")):
                start = time.perf_counter()
                row = run_one(benchmark, strategy, seed, out)
                with log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{benchmark} {strategy} seed {seed}: "
                      f"{100 * row['average_accuracy']:.1f}% ({time.perf_counter() - start:.0f} s)",
                      flush=True)
    return log


def main() -> None:
    args = arguments(__spec__.name, __doc__.splitlines()[0], STRATEGIES, list(BENCHMARKS),
                     HERE / "runs.jsonl")
    write_results(sweep(args))

def write_results(log: Path) -> None:
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    header = (f"# Strategies × benchmarks\n\nRecorded by `python -m experiments.strategies.run` on "
              f"{platform.machine()} ({os.cpu_count()} CPU cores, no GPU), torch {torch.__version__}, "
              f"one thread per run. Final average accuracy, backward transfer and forgetting after the "
              f"last task, mean ± std over seeds; training time relative to FineTune on the same "
              f"benchmark in the same sweep (rows of earlier sweeps ran under another load). Split-MNIST uses the offline MNIST test set split 8,000 / 2,000 (seed 0): "
              f"not comparable one-to-one with papers that train on the 60,000 training images.\n")
    (HERE / "results.md").write_text(header + table(rows) + "\n")


if __name__ == "__main__":
    main()
