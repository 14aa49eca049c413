"""Do the newer methods show the orderings the literature reports?

    python -m experiments.strategies.orderings                  # Split-Digits ×2, Permuted-Digits
    python -m experiments.strategies.orderings --benchmarks split_mnist_class --strategies er,bic

Each run goes through the configs and code path of ``continual run`` (``run.run_one``), with
the reference methods (FineTune, ER) run beside the new ones in the same sweep; rows go to
``orderings.jsonl`` and ``orderings.md`` is rebuilt from it, with each ordering checked per seed.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from experiments.strategies.run import HERE, arguments, sweep

BENCHMARKS = ["split_digits_class", "split_digits_task", "permuted_digits"]
STRATEGIES = ["finetune", "er", "mir", "rwalk", "bic", "lucir", "packnet", "pnn", "fecam",
              "simplecil"]

# (claim, benchmark, metric, better, worse): better's metric exceeds worse's on every seed;
# worse=None: better's metric is exactly zero on every seed.
ORDERINGS = [
    ("BiC beats ER with the same 200-item memory (Wu et al. 2019)", "split_digits_class",
     "average_accuracy", "bic", "er"),
    ("BiC beats ER with the same 200-item memory (Wu et al. 2019)", "split_mnist_class",
     "average_accuracy", "bic", "er"),
    ("PackNet forgets nothing in task-IL (Mallya & Lazebnik 2018)", "split_digits_task",
     "forgetting", "packnet", None),
    ("LUCIR beats FineTune class-IL (Hou et al. 2019)", "split_digits_class",
     "average_accuracy", "lucir", "finetune"),
    ("MIR beats FineTune class-IL (Aljundi et al. 2019)", "split_digits_class",
     "average_accuracy", "mir", "finetune"),
    ("RWalk beats FineTune on Permuted-Digits (Chaudhry et al. 2018)", "permuted_digits",
     "average_accuracy", "rwalk", "finetune"),
    ("PNN forgets nothing in task-IL (Rusu et al. 2016)", "split_digits_task",
     "forgetting", "pnn", None),
    ("FeCAM, frozen after the first task, forgets nothing in task-IL (Goswami et al. 2023)",
     "split_digits_task", "forgetting", "fecam", None),
    ("SimpleCIL, frozen after the first task, forgets nothing in task-IL (Zhou et al. 2024)",
     "split_digits_task", "forgetting", "simplecil", None),
]
# Checked by tests instead (per step or on fixed data): iCaRL's nearest-mean classifier beats
# its own softmax head class-IL (tests/test_icarl.py), GEM's step raises no past task's memory
# loss to first order (tests/test_gem.py), FeCAM's old-class scores are bit-identical after
# later tasks (tests/test_fecam.py).


def check(rows: list[dict], benchmark: str, metric: str, better: str, worse: str | None
          ) -> str:
    def by_seed(strategy):
        return {r["seed"]: r[metric] for r in rows
                if r["benchmark"] == benchmark and r["strategy"] == strategy}

    a, b = by_seed(better), by_seed(worse) if worse else {}
    seeds = sorted(a if worse is None else set(a) & set(b))
    if not seeds:
        return "not run"
    held = [a[s] == 0 if worse is None else a[s] > b[s] for s in seeds]
    return f"{'holds' if all(held) else 'FAILS'} ({sum(held)}/{len(held)} seeds)"


def write_results(log: Path) -> None:
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    lines = ["# The new methods' orderings\n",
             f"Recorded by `python -m experiments.strategies.orderings` on {platform.machine()} "
             f"({os.cpu_count()} CPU cores, no GPU), torch {torch.__version__}, one thread per "
             "run; settings of `configs/experiments/split_digits.yaml` (MLP 64-100-100-10, Adam "
             "1e-3, 20 epochs × batch 32 per task) and each method's `configs/strategy/*.yaml`. "
             "Split-MNIST: the offline MNIST test set split 8,000 / 2,000 (seed 0), MLP "
             "784-400-400-10, 5 epochs (`configs/data/split_mnist.yaml`). Seeds 0, 1, 2; mean ± "
             "std (ddof 1) over seeds of the final average accuracy and forgetting.\n",
             "| claim | benchmark | result |", "| --- | --- | --- |"]
    lines += [f"| {claim} | {bench} | {check(rows, bench, metric, better, worse)} |"
              for claim, bench, metric, better, worse in ORDERINGS]
    lines += ["\nChecked by tests instead (per step, or on fixed data): iCaRL's nearest-mean "
              "classifier beats its own softmax head class-IL (`tests/test_icarl.py`); GEM's "
              "projected step raises no past task's memory loss to first order and is the "
              "closest such gradient (`tests/test_gem.py`); FeCAM's old-class scores are "
              "bit-identical after later tasks (`tests/test_fecam.py`)."]
    for benchmark in dict.fromkeys(r["benchmark"] for r in rows):
        lines += [f"\n### {benchmark}\n", "| strategy | avg acc % | forgetting % | seeds |",
                  "| --- | --- | --- | --- |"]
        for strategy in dict.fromkeys(r["strategy"] for r in rows):
            runs = [r for r in rows if r["benchmark"] == benchmark and r["strategy"] == strategy]
            if runs:
                acc, fgt = (100 * np.array([r[k] for r in runs])
                            for k in ("average_accuracy", "forgetting"))
                lines.append(f"| {strategy} | {acc.mean():.1f} ± {acc.std(ddof=1):.1f} | "
                             f"{fgt.mean():.1f} ± {fgt.std(ddof=1):.1f} | {len(runs)} |")
    (HERE / "orderings.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    args = arguments(__spec__.name, __doc__.splitlines()[0], STRATEGIES, BENCHMARKS,
                     HERE / "orderings.jsonl")
    write_results(sweep(args))

if __name__ == "__main__":
    main()
