"""A user's own nets, whole runs: continual against a plain PyTorch loop and Avalanche 0.6.

    OMP_NUM_THREADS=1 python -m experiments.benchmarks.vs_avalanche --repeats 5 --mlp-repeats 11  # the record
    OMP_NUM_THREADS=1 python -m experiments.benchmarks.vs_avalanche --repeats 1 --epochs 1 --out /tmp/x.json

The question: on the networks users bring (a small CNN of their own, an MLP), how long does a
whole continual run take — training, the strategy's own work (EWC's importance, a memory),
and evaluating every task after each task — compared with the plain loop a user would write
for fine-tuning, and with Avalanche doing the same work?

Split-MNIST from ``../shared/data/mnist-t10k`` (8,000 train / 2,000 test, seed 0; 5 tasks of
2 classes, class-incremental), Adam 1e-3 made afresh each task, batch 128, 3 epochs a task,
one intra-op thread. Each library runs its own defaults: continual's ``EWC()`` and
``ExperienceReplay(buffer_size=500)`` (replay batch = new batch; in the *same work* cells
``replay_from_task=1``: Avalanche's ``Replay`` replays from its second experience, its memory
filled at each experience's end); Avalanche's ``EWC`` (λ = 100,
``mode="separate"``, its empirical Fisher over the whole experience) and ``Replay(mem_size=500)``;
Avalanche evaluates its test stream after each experience, with accuracy metrics and no
logger. The plain loop fine-tunes and evaluates every task after each task: the same work as
a FineTune run, nothing around it. The plain loop and Avalanche read MNIST decoded to floats
once, outside the timing; continual's default cells read its uint8 pixels and decode each
batch (a quarter of the memory), its *same work* cells read the same floats. Every repeat runs every cell once, in an order rotated
each repeat; each cell's time is divided by the plain loop's time on the same net in the same
repeat, and the medians of those ratios over repeats are reported, after one warm-up repeat.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
import warnings
from functools import partial
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # a CPU benchmark: no device probes

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from continual import ContinualModule, run  # noqa: E402
from continual.strategies import EWC, ExperienceReplay, FineTune  # noqa: E402
from experiments.benchmarks import plain  # noqa: E402
from experiments.benchmarks.speed import load_stream, machine  # noqa: E402
from experiments.record import save  # noqa: E402

HERE = Path(__file__).parent
METHODS = ("FineTune", "EWC", "ER")


class UserCNN(nn.Module):
    """The user's own conv net of the issue: conv 1→32→64, two max-pools, fc 1600→128→10."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.head(self.features(x.float()))


def user_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 400),
                         nn.ReLU(), nn.Linear(400, 10))


NETS = {"CNN": UserCNN, "MLP": user_mlp}


def fresh(net_name: str) -> nn.Module:
    torch.manual_seed(0)
    return NETS[net_name]()


def accuracy(net: nn.Module, x, y, batch: int = 1024) -> float:
    net.eval()
    with torch.inference_mode():
        right = sum(int((net(x[i:i + batch].float()).argmax(-1) == y[i:i + batch]).sum())
                    for i in range(0, len(y), batch))
    net.train()
    return right / max(len(y), 1)


def plain_loop(stream, net_name: str, epochs: int, batch_size: int) -> float:
    """Fine-tune task after task; evaluate every task after each. Final average accuracy."""
    net = fresh(net_name)
    row = []
    for i, task in enumerate(stream):
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        x, y = task.train.x, task.train.y
        generator = torch.Generator().manual_seed(i)
        for _ in range(epochs):
            for idx in torch.randperm(len(y), generator=generator).split(batch_size):
                optimizer.zero_grad()
                F.cross_entropy(net(x[idx].float()), y[idx]).backward()
                optimizer.step()
        row = [accuracy(net, t.test.x, t.test.y) for t in stream]
    return float(np.mean(row))


def toolkit(stream, net_name: str, method: str, epochs: int, batch_size: int,
            untrained: bool = True, replay_from_task: int = 0) -> float:
    strategy = {"FineTune": FineTune, "EWC": EWC,
                "ER": partial(ExperienceReplay, buffer_size=500,
                              replay_from_task=replay_from_task)}[method]()
    module = ContinualModule(fresh(net_name), strategy,
                             optimizer=partial(torch.optim.Adam, lr=1e-3))
    result = run(stream, module, trainer={"max_epochs": epochs, "accelerator": "cpu"},
                 batch_size=batch_size, echo=None, evaluate_untrained=untrained)
    return float(result.summary["average_accuracy"])


def avalanche_benchmark(stream, flatten: bool = False):
    """Avalanche's class-incremental benchmark of ``stream``'s very tensors and class order
    (``flatten``: inputs as vectors, for MLPs of Avalanche's; task labels on task-IL streams)."""
    from avalanche.benchmarks import nc_benchmark
    from torch.utils.data import TensorDataset

    def labelled(parts):
        x = torch.cat([p.x for p in parts]).float()
        y = torch.cat([p.y for p in parts])
        dataset = TensorDataset(x.flatten(1) if flatten else x, y)
        dataset.targets = y  # where Avalanche reads labels
        return dataset

    order = [c for task in stream for c in task.classes]
    return nc_benchmark(train_dataset=labelled([t.train for t in stream]),
                        test_dataset=labelled([t.test for t in stream]),
                        n_experiences=len(stream), task_labels=stream.scenario == "task",
                        fixed_class_order=order, class_ids_from_zero_in_each_exp=False)


def avalanche(benchmark, net_name: str, method: str, epochs: int, batch_size: int) -> float:
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.supervised import EWC as AvEWC
    from avalanche.training.supervised import Naive, Replay

    net = fresh(net_name)
    common = {"model": net, "optimizer": torch.optim.Adam(net.parameters(), lr=1e-3),
              "criterion": nn.CrossEntropyLoss(), "train_mb_size": batch_size,
              "train_epochs": epochs, "eval_mb_size": 1024, "device": "cpu",
              "evaluator": EvaluationPlugin(accuracy_metrics(stream=True), loggers=[])}
    strategy = {"FineTune": partial(Naive), "EWC": partial(AvEWC, ewc_lambda=100.0),
                "ER": partial(Replay, mem_size=500)}[method](**common)
    results = {}
    for experience in benchmark.train_stream:
        strategy.train(experience, num_workers=0)
        results = strategy.eval(benchmark.test_stream, num_workers=0)
    key = next(k for k in results if k.startswith("Top1_Acc_Stream"))
    return float(results[key])


def cells(stream, floats, benchmark, epochs: int, batch_size: int):
    for net in NETS:
        yield net, "plain", "FineTune", partial(plain_loop, floats, net, epochs, batch_size)
        for method in METHODS:
            yield net, "continual", method, partial(toolkit, stream, net, method, epochs,
                                                    batch_size)
            # The others' inputs (floats, decoded once, untimed) and Avalanche's replay schedule.
            yield net, "continual, same work", method, partial(
                toolkit, floats, net, method, epochs, batch_size, untrained=False,
                replay_from_task=1)
            yield net, "Avalanche", method, partial(avalanche, benchmark, net, method, epochs,
                                                    batch_size)


def measure(args) -> dict:
    stream = load_stream()  # the toolkit reads MNIST as uint8 and decodes each batch
    floats = plain.floats(stream)  # the plain loop, Avalanche and "same work" start from floats
    benchmark = avalanche_benchmark(floats)
    todo = list(cells(stream, floats, benchmark, args.epochs, args.batch_size))
    times: dict[tuple, list[float]] = {}
    accuracy_of: dict[tuple, float] = {}
    start_load = os.getloadavg()
    repeats = {net: args.mlp_repeats if net == "MLP" and args.mlp_repeats else args.repeats
               for net in NETS}
    for repeat in range(max(repeats.values()) + 1):  # repeat 0 warms up
        shift = repeat % len(todo)
        for net, library, method, work in todo[shift:] + todo[:shift]:
            if repeat > repeats[net]:
                continue
            t0 = time.perf_counter()
            acc = work()
            seconds = time.perf_counter() - t0
            if repeat:
                times.setdefault((net, library, method), []).append(seconds)
                accuracy_of[(net, library, method)] = acc
            print(f"repeat {repeat} {net:4s} {library:20s} {method:8s} {seconds:6.2f} s "
                  f"acc {100 * acc:.1f} %", flush=True)
    rows = []
    for (net, library, method), seconds in times.items():
        base = times[(net, "plain", "FineTune")]
        ratios = [s / b for s, b in zip(seconds, base)]
        rows.append({"net": net, "library": library, "method": method,
                     "seconds": statistics.median(seconds), "ratio": statistics.median(ratios),
                     "spread": [min(ratios), max(ratios)],
                     "accuracy": accuracy_of[(net, library, method)]})
    return {"machine": {**machine(), "load_start": start_load, "load_end": os.getloadavg()},
            "settings": {"repeats": args.repeats, "epochs": args.epochs,
                         "batch_size": args.batch_size, "repeats_per_net": repeats},
            "rows": rows}


def report(data: dict) -> str:
    m, s = data["machine"], data["settings"]
    rows = {(r["net"], r["library"], r["method"]): r for r in data["rows"]}
    lines = [
        "# A user's own nets, whole runs: continual vs a plain loop vs Avalanche 0.6", "",
        f"Split-MNIST (mnist-t10k, 8,000 train / 2,000 test, 5 tasks), Adam 1e-3, batch "
        f"{s['batch_size']}, {s['epochs']} epochs a task, whole run (training, the strategy's "
        f"own work, evaluating every task after each task). Median of {_repeats(s)} repeats "
        f"after a warm-up, each cell ÷ the plain fine-tuning loop on the same net in the same "
        f"repeat. Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} intra-op thread(s), "
        f"torch {m['torch']}; load average {m['load_start'][0]:.2f} at the start, "
        f"{m['load_end'][0]:.2f} at the end. Script: "
        "`python -m experiments.benchmarks.vs_avalanche`.", "",
        "*continual* runs its defaults, which score the untrained network on every task first "
        "(forward transfer's reference: one evaluation pass more than the others do); "
        "*same work* leaves that out (`run(..., evaluate_untrained=False)`), doing exactly "
        "the plain loop's and Avalanche's work: it reads the same float inputs they do (decoded "
        "once, untimed, where the default keeps MNIST's uint8 pixels and decodes each batch), "
        "and its ER replays from the second task on "
        "(`replay_from_task=1`), as Avalanche's `Replay` does (it fills its memory at each "
        "experience's end), where continual's default reservoir ER replays from the first "
        "task's second step (a quarter more replayed steps on this stream).", "",
        "| net | method | continual × plain (spread) | continual, same work | "
        "Avalanche × plain (spread) | target (same work) | accuracy % continual / Avalanche / "
        "plain |",
        "| --- | --- | --- | --- | --- | --- | --- |"]
    targets = {"FineTune": 1.10, "EWC": 1.30, "ER": 1.9}
    for net in NETS:
        plain_row = rows[(net, "plain", "FineTune")]
        for method in METHODS:
            ours, theirs = rows[(net, "continual", method)], rows[(net, "Avalanche", method)]
            same = rows[(net, "continual, same work", method)]
            met = same["ratio"] <= targets[method] and same["ratio"] <= theirs["ratio"]
            lines.append(
                f"| {net} | {method} | {ours['ratio']:.2f} ({ours['spread'][0]:.2f}–"
                f"{ours['spread'][1]:.2f}) | {same['ratio']:.2f} ({same['spread'][0]:.2f}–"
                f"{same['spread'][1]:.2f}) | {theirs['ratio']:.2f} ({theirs['spread'][0]:.2f}–"
                f"{theirs['spread'][1]:.2f}) | ≤ {targets[method]:.2f} and ≤ Avalanche "
                f"{'✓' if met else '✗'} | {100 * ours['accuracy']:.1f} / "
                f"{100 * theirs['accuracy']:.1f} / {100 * plain_row['accuracy']:.1f} |")
    lines += ["", "Plain loop, median seconds per run: " + ", ".join(
        f"{net} {rows[(net, 'plain', 'FineTune')]['seconds']:.2f} s" for net in NETS) + "."]
    return "\n".join(lines) + "\n"


def _repeats(settings: dict) -> str:
    per_net = settings.get("repeats_per_net") or {}
    if len(set(per_net.values())) > 1:
        return " / ".join(f"{n} ({net})" for net, n in per_net.items())
    return str(settings["repeats"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.vs_avalanche",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlp-repeats", type=int, default=0,
                        help="repeats of the MLP's cells (a run lasts ~1 s: more repeats "
                             "steady its medians); 0: --repeats")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "vs_avalanche.json")
    parser.add_argument("--report", type=Path, help="only rewrite the .md of a recorded JSON")
    args = parser.parse_args()
    if args.report:
        args.report.with_suffix(".md").write_text(report(json.loads(args.report.read_text())))
        return
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    data = measure(args)
    save(args.out, data, report(data))


if __name__ == "__main__":
    main()
