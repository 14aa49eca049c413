"""What does Lightning itself cost a short run? A bare LightningModule against the plain loop
and continual, whole runs, on the nets of ``vs_avalanche.py``.

    OMP_NUM_THREADS=1 python -m experiments.benchmarks.lightning_floor     # lightning_floor.md

The question behind it: continual trains through Lightning's public API, so the least it can
cost over a plain PyTorch loop is what Lightning's own loop costs. *Bare Lightning* is the
smallest run a Lightning user would write for the same work: a ``LightningModule`` with
manual optimisation (``zero_grad``, ``manual_backward``, ``step``; automatic optimisation
costs more), a new ``Trainer`` per task (logger, checkpointing, progress bar and model
summary off; or ``barebones=True``, Lightning's own least-overhead mode, which turns off
every logging and callback feature), the plain loop's very batches (float inputs, same order), and the plain loop's
evaluation of every task after each. Split-MNIST as in ``vs_avalanche.py`` (Adam 1e-3, batch
128, 3 epochs a task, one intra-op thread); continual runs FineTune doing the same work
(``evaluate_untrained=False``). Alternating, one warm-up repeat, medians of the per-repeat
ratios to the plain loop.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from lightning.pytorch import LightningModule, Trainer  # noqa: E402

from experiments.benchmarks import plain  # noqa: E402
from experiments.benchmarks.speed import load_stream, machine  # noqa: E402
from experiments.benchmarks.vs_avalanche import accuracy, fresh, plain_loop, toolkit  # noqa: E402
from experiments.record import save  # noqa: E402

HERE = Path(__file__).parent


class Bare(LightningModule):
    """The least a LightningModule does to fine-tune: manual optimisation of the net."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.automatic_optimization = net, False

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=1e-3)

    def training_step(self, batch, batch_idx):
        x, y = batch
        optimizer = self.optimizers()
        optimizer.zero_grad()
        loss = F.cross_entropy(self.net(x), y)
        self.manual_backward(loss)
        optimizer.step()
        return loss


def batches(x, y, seed: int, epochs: int, batch_size: int):
    """The plain loop's batches of one task, epoch after epoch, as a list a Trainer iterates
    once per epoch (one epoch's list each)."""
    generator = torch.Generator().manual_seed(seed)
    return [[(x[i], y[i]) for i in torch.randperm(len(y), generator=generator).split(batch_size)]
            for _ in range(epochs)]


class Epochs:
    """A loader whose epoch ``e`` yields the ``e``-th list of batches."""

    def __init__(self, epochs) -> None:
        self.epochs, self.epoch = epochs, 0

    def __len__(self) -> int:
        return len(self.epochs[0])

    def __iter__(self):
        epoch = self.epochs[min(self.epoch, len(self.epochs) - 1)]
        self.epoch += 1
        return iter(epoch)


def bare_lightning(stream, net_name: str, epochs: int, batch_size: int,
                   barebones: bool = False) -> float:
    module = Bare(fresh(net_name))
    row = []
    quiet = {"barebones": True} if barebones else {
        "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
        "enable_model_summary": False}
    for i, task in enumerate(stream):
        trainer = Trainer(max_epochs=epochs, accelerator="cpu", num_sanity_val_steps=0,
                          **quiet)
        trainer.fit(module, Epochs(batches(task.train.x, task.train.y, i, epochs, batch_size)))
        row = [accuracy(module.net, t.test.x, t.test.y) for t in stream]
    return sum(row) / len(row)


def measure(repeats: int, epochs: int, batch_size: int, nets: tuple[str, ...] = ("CNN", "MLP")
            ) -> dict:
    stream = load_stream()
    floats = plain.floats(stream)
    cells = {("plain", net): (lambda n=net: plain_loop(floats, n, epochs, batch_size))
             for net in nets}
    for net in nets:
        cells[("bare Lightning", net)] = lambda n=net: bare_lightning(floats, n, epochs,
                                                                       batch_size)
        cells[("bare Lightning, barebones=True", net)] = lambda n=net: bare_lightning(
            floats, n, epochs, batch_size, barebones=True)
        cells[("continual FineTune", net)] = lambda n=net: toolkit(
            stream, n, "FineTune", epochs, batch_size, untrained=False)
    times: dict[tuple, list[float]] = {}
    load = os.getloadavg()
    order = list(cells)
    for repeat in range(repeats + 1):
        shift = repeat % len(order)
        for key in order[shift:] + order[:shift]:
            start = time.perf_counter()
            cells[key]()
            seconds = time.perf_counter() - start
            if repeat:
                times.setdefault(key, []).append(seconds)
            print(repeat, *key, f"{seconds:.2f} s", flush=True)
    rows = []
    for (what, net), seconds in times.items():
        ratios = [s / b for s, b in zip(seconds, times[("plain", net)])]
        rows.append({"run": what, "net": net, "seconds": statistics.median(seconds),
                     "ratio": statistics.median(ratios), "spread": [min(ratios), max(ratios)]})
    return {"machine": {**machine(), "load_start": load, "load_end": os.getloadavg()},
            "settings": {"repeats": repeats, "epochs": epochs, "batch_size": batch_size},
            "rows": rows}


def report(data: dict) -> str:
    m, s = data["machine"], data["settings"]
    lines = ["# Lightning's own cost on a short run", "",
             "`python -m experiments.benchmarks.lightning_floor`: whole runs (training, and "
             "every task evaluated after each) × the plain PyTorch loop on the same net in "
             f"the same repeat; medians of {s['repeats']} repeats after a warm-up, spread "
             f"min–max. Split-MNIST, {s['epochs']} epochs a task, batch {s['batch_size']}, "
             f"Adam 1e-3. Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} intra-op "
             f"thread(s), torch {m['torch']}; load average {m['load_start'][0]:.2f} at the "
             f"start, {m['load_end'][0]:.2f} at the end.", "",
             "| net | run | × plain (spread) | seconds |", "| --- | --- | --- | --- |"]
    for r in sorted(data["rows"], key=lambda r: (r["net"], r["ratio"])):
        lines.append(f"| {r['net']} | {r['run']} | {r['ratio']:.2f} ({r['spread'][0]:.2f}–"
                     f"{r['spread'][1]:.2f}) | {r['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.lightning_floor")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--nets", default="CNN,MLP", help="comma-separated: CNN, MLP")
    parser.add_argument("--out", default=str(HERE / "lightning_floor.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    data = measure(args.repeats, args.epochs, args.batch_size, tuple(args.nets.split(",")))
    save(args.out, data, report(data))


if __name__ == "__main__":
    main()
