"""Per-epoch training cost of each strategy relative to FineTune, and online EWC's memory.

    python -m experiments.strategies.speed          # writes speed.md next to this file

Epoch times come from a Lightning callback, median over the epochs of tasks 2..T (when the
penalties and memories are active), all strategies in the same process, alternating order
over repeats so drift on a shared machine hits every strategy alike.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import torch
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch import Callback

from continual import ContinualModule, run
from continual.data import digits, idx_folder, permuted, split_classes
from continual.nets import MLP
from continual.strategies import (
    AGEM,
    DER,
    ERACE,
    EWC,
    MAS,
    SI,
    DERpp,
    ExperienceReplay,
    FineTune,
    LwF,
    OnlineEWC,
)

HERE = Path(__file__).parent
MNIST = HERE.parents[2] / "shared" / "data" / "mnist-t10k"


class EpochTimer(Callback):
    """Wall-clock seconds of every training epoch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(time.perf_counter() - self._start)


STRATEGIES = {
    "FineTune": FineTune, "EWC": lambda: EWC(lam=30.0), "OnlineEWC": lambda: OnlineEWC(30.0),
    "SI": lambda: SI(10.0), "MAS": lambda: MAS(0.1), "LwF": LwF,
    "ER": lambda: ExperienceReplay(200), "A-GEM": lambda: AGEM(200), "DER": lambda: DER(),
    "DER++": lambda: DERpp(), "ER-ACE": lambda: ERACE(200),
}


def epoch_seconds(stream, make, net, epochs: int, batch_size: int) -> float:
    timer = EpochTimer()
    seed_everything(0, verbose=False)
    run(stream, ContinualModule(net(), make()), echo=None, batch_size=batch_size,
        trainer={"accelerator": "cpu", "max_epochs": epochs, "callbacks": [timer],
                 "limit_val_batches": 0})
    return statistics.median(timer.seconds[epochs:])  # tasks 2..T


def main() -> None:
    torch.set_num_threads(1)
    if MNIST.is_dir():
        stream = split_classes(idx_folder(MNIST, val_fraction=0.0, test_fraction=0.2), n_tasks=5)
        net, name = (lambda: MLP(784, (400, 400), 10)), "Split-MNIST (8,000 train), MLP 784-400-400-10"
    else:
        stream, net, name = split_classes(digits(), n_tasks=5), MLP, "Split-Digits, MLP 64-100-100-10"
    repeats, times = 3, {k: [] for k in STRATEGIES}
    for r in range(repeats):
        order = list(STRATEGIES) if r % 2 == 0 else list(reversed(STRATEGIES))
        for key in order:
            times[key].append(epoch_seconds(stream, STRATEGIES[key], net, 5, 128))
            print(key, f"{times[key][-1] * 1000:.0f} ms/epoch", flush=True)
    base = statistics.median(times["FineTune"])
    lines = [f"# Epoch cost relative to FineTune\n\n{name}, batch 128, 5 epochs per task; median "
             f"epoch time over tasks 2-5, {repeats} repeats in alternating order; "
             f"{platform.machine()}, {os.cpu_count()} cores, 1 thread, torch {torch.__version__}.\n",
             "| strategy | ms / epoch | ratio to FineTune |", "| --- | --- | --- |"]
    for key, values in times.items():
        m = statistics.median(values)
        lines.append(f"| {key} | {m * 1000:.0f} | {m / base:.2f}× |")

    perm = permuted(digits(), n_tasks=20, seed=0)
    memory = {}
    for key, make in (("EWC", lambda: EWC(10.0, n_samples=32)),
                      ("OnlineEWC", lambda: OnlineEWC(10.0, n_samples=32))):
        for n_tasks in (2, 20):
            strategy = make()
            stream = type(perm)(perm.tasks[:n_tasks], perm.scenario, perm.n_classes,
                                perm.input_shape)
            run(stream, ContinualModule(MLP(), strategy), echo=None,
                trainer={"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 0})
            memory[key, n_tasks] = strategy.memory_bytes()
    lines += ["\n# Regulariser memory (anchors + importances), Permuted-Digits, MLP 64-100-100-10\n",
              "| strategy | after 2 tasks | after 20 tasks |", "| --- | --- | --- |"]
    for key in ("EWC", "OnlineEWC"):
        lines.append(f"| {key} | {memory[key, 2] / 1024:.0f} KiB | {memory[key, 20] / 1024:.0f} KiB |")
    (HERE / "speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
