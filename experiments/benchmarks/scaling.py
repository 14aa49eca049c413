"""What each strategy costs as the stream grows: time per task and memory against the task count.

    python -m experiments.benchmarks.scaling          # ~4 min: scaling.md, scaling.json, two PNGs here
    python -m experiments.benchmarks.scaling --tasks 3 --out /tmp/scaling   # a quick look
    python -m experiments.benchmarks.scaling --report  # the .md and plots again from scaling.json

Permuted-MNIST (the offline MNIST test set, 8,000 training images, one pixel permutation per
task; 20 tasks), MLP 784-400-400-10, Adam 1e-3, batch 128, one epoch per task, one intra-op
thread, through the toolkit's ``run()``. Per task: training seconds (``Trainer`` + ``fit``), the
strategy's own seconds (EWC's Fisher) and evaluation seconds (all 20 test sets); per task
count: the bytes of the strategy's state (anchors, importances, memories) and of the training
data the strategy trains on at that task (full retraining keeps everything).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # as in speed.py

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from continual import ContinualModule, run  # noqa: E402
from continual.data import idx_folder, permuted  # noqa: E402
from experiments.benchmarks.speed import (  # noqa: E402
    MNIST,
    machine,
    make_strategy,
    new_net,
    state_bytes,
)

HERE = Path(__file__).parent

CONFIGS = {"FineTune": "finetune", "FullRetrain (scratch)": "full_retrain",
           "FullRetrain (warm)": "full_retrain_warm", "ER": "er", "EWC": "ewc",
           "OnlineEWC": "online_ewc"}


def recorded(strategy):
    """The strategy, noting after each task its state's bytes and its training data's."""
    base = type(strategy)

    class Recorded(base):
        def on_task_end(self, module, stream, index):
            super().on_task_end(module, stream, index)
            tasks = self.tasks_to_train(stream, index)  # sizes only: no concatenation
            self.sizes.append({"state": state_bytes(self.state_dict()),
                               "data": state_bytes([[stream[k].train.x, stream[k].train.y]
                                                    for k in tasks])})

    strategy.__class__ = Recorded
    strategy.sizes = []
    return strategy


def measure(stream, config: str, epochs: int) -> dict:
    strategy = recorded(make_strategy(config))
    result = run(stream, ContinualModule(new_net(), strategy), batch_size=128, echo=None,
                 trainer={"max_epochs": epochs, "accelerator": "cpu"})
    return {"train": [c.train_seconds for c in result.cost],
            "strategy": [c.strategy_seconds for c in result.cost],
            "eval": [c.eval_seconds for c in result.cost],
            "samples": [c.train_samples for c in result.cost],
            "sizes": strategy.sizes, "final_accuracy": float(result.matrix[-1].mean())}


def permuted_mnist(n_tasks: int):
    return permuted(idx_folder(MNIST, val_fraction=0.0, test_fraction=0.2, seed=0), n_tasks)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.scaling", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="permuted tasks (default 20)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per task (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder for scaling.json, scaling.md and the plots "
                             "(default experiments/benchmarks)")
    parser.add_argument("--report", action="store_true",
                        help="only redraw the .md and plots from the folder's scaling.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        saved = json.loads((args.out / "scaling.json").read_text())
        report(saved["info"], saved["runs"], args.out)
        return
    torch.set_num_threads(args.threads)
    stream = permuted_mnist(args.tasks)
    info = {"machine": machine(), "tasks": args.tasks, "epochs": args.epochs,
            "train_per_task": len(stream[0].train), "test_per_task": len(stream[0].test)}
    print(info, flush=True)
    measure(permuted_mnist(2), "ewc", 1)  # warm-up: the first fits of a process are slower
    runs = {}
    for name, config in CONFIGS.items():
        runs[name] = measure(stream, config, args.epochs)
        print(name, [round(s, 2) for s in runs[name]["train"]], flush=True)
    info["machine"]["load_end"] = os.getloadavg()
    (args.out / "scaling.json").write_text(json.dumps({"info": info, "runs": runs}))
    report(info, runs, args.out)


def report(info: dict, runs: dict, out: Path) -> None:
    n = info["tasks"]
    index = list(range(1, n + 1))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, r in runs.items():
        ax.plot(index, [a + b for a, b in zip(r["train"], r["strategy"])], marker="o", ms=3,
                label=name)
    ax.set(xlabel="task index", ylabel="seconds (training + strategy's own work)",
           title=f"Permuted-MNIST, {info['epochs']} epoch(s) per task: time per task")
    ax.set_xticks(index[::max(1, n // 10)])
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scaling_time.png", dpi=120)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, key, style in (("EWC", "state", "o-"), ("OnlineEWC", "state", "s-"),
                             ("ER", "state", "^-"), ("FullRetrain (scratch)", "data", "d--")):
        what = "training data" if key == "data" else "state"
        ax.plot(index, [s[key] / 2**20 for s in runs[name]["sizes"]], style, ms=3,
                label=f"{name}: {what}")
    ax.set(xlabel="tasks seen", ylabel="MiB", yscale="log",
           title="Memory a strategy holds against the number of tasks")
    ax.set_xticks(index[::max(1, n // 10)])
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scaling_memory.png", dpi=120)

    m = info["machine"]
    shown = sorted({1, 2, 5, 10, 15, n} & set(index))
    lines = [
        "# Scaling with the number of tasks\n",
        f"Permuted-MNIST, {n} tasks of {info['train_per_task']:,} training images (the offline "
        f"test set's 8,000, one permutation per task), MLP 784-400-400-10, Adam 1e-3, batch 128, "
        f"{info['epochs']} epoch(s) per task, configs/strategy/*.yaml; {m['cpu']}, "
        f"{m['cores']} cores, {m['threads']} intra-op thread, torch {m['torch']}; load average "
        f"{m['load'][0]:.2f} at start, {m['load_end'][0]:.2f} at end.\n",
        "![time per task](scaling_time.png)\n",
        "## Training seconds per task (`Trainer` + `fit`; + the strategy's own work, e.g. "
        "the Fisher)\n",
        "| strategy | " + " | ".join(f"task {i}" for i in shown) + " | total | samples trained "
        "| final avg acc |",
        "| --- | " + " | ".join("---" for _ in shown) + " | --- | --- | --- |"]
    for name, r in runs.items():
        cells = []
        for i in shown:
            extra = r["strategy"][i - 1]
            cells.append(f"{r['train'][i - 1]:.2f}" + (f" + {extra:.2f}" if extra >= 0.01 else ""))
        total = sum(r["train"]) + sum(r["strategy"])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {total:.1f} | "
                     f"{sum(r['samples']):,} | {100 * r['final_accuracy']:.1f} % |")
    lines += [f"\nEvaluation after each task (all {n} test sets, the unseen ones too): "
              + ", ".join(f"{name} {sum(r['eval']) / n:.2f} s" for name, r in runs.items())
              + " per task on average.\n",
              "![memory](scaling_memory.png)\n",
              "## Memory against the number of tasks (MiB)\n",
              "*state*: the tensors of the strategy's `state_dict` (anchors and importances; "
              "replay memory); *data*: the training set the strategy trains on at that task.\n",
              "| strategy | what | " + " | ".join(f"{i} tasks" for i in shown) + " |",
              "| --- | --- | " + " | ".join("---" for _ in shown) + " |"]
    for name, r in runs.items():
        for key in ("state", "data"):
            values = [r["sizes"][i - 1][key] / 2**20 for i in shown]
            if max(values) > 0:
                lines.append(f"| {name} | {key} | " + " | ".join(f"{v:.2f}" for v in values)
                             + " |")
    (out / "scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
