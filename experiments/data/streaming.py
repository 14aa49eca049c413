"""Data larger than memory: a litdata stream on disk against the in-memory path.

    python -m experiments.data.streaming --n 200000       # writes streaming.md / .json here

Synthetic 3×64×64 uint8 images (10 classes: a class colour plus noise), written once with
``write_litdata`` under ``--root`` (not the repository), then:

1. **stream**: all ``--n`` images as 5 class-incremental tasks, one epoch each, ER(2,000),
   read by ``--workers`` DataLoader workers; peak RSS of the main process and of the worker
   processes, against the fixed bound ``--rss-bound-mib``.
2. **speed**: a ``--subset`` that fits in memory, trained the same way twice: from
   ``TensorData`` (the in-memory path) and streamed from the chunks; samples/s of each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from continual import ContinualModule, run
from continual.data import split_classes
from continual.data.litdata_format import litdata_splits, write_litdata
from continual.data.splits import DataSplits
from continual.strategies import ExperienceReplay

OUT = Path(__file__).parent


class Synthetic(Dataset):
    """Image ``i``: class ``i % 10``'s colour plus uniform noise, from ``i`` alone."""

    colours = torch.randint(0, 160, (10, 3, 1, 1), generator=torch.Generator().manual_seed(0))

    def __init__(self, n: int) -> None:
        self.n = n
        self.targets = torch.arange(n) % 10

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        noise = torch.randint(0, 96, (3, 64, 64), generator=torch.Generator().manual_seed(i),
                              dtype=torch.uint8)
        return noise + self.colours[i % 10].to(torch.uint8), i % 10


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(  # small: the data path, not the net, should show
        nn.AvgPool2d(4),  # [B, 3, 16, 16]
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),  # [B, 16, 16, 16]
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # [B, 32, 8, 8]
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def train(data: DataSplits, batch_size: int) -> dict:
    stream = split_classes(data, n_tasks=5)
    module = ContinualModule(net(), ExperienceReplay(2000, seed=0))
    start = time.perf_counter()
    result = run(stream, module, trainer={"max_epochs": 1}, batch_size=batch_size, seed=0,
                 echo=None, evaluate_untrained=False)
    samples = sum(c.train_samples for c in result.cost)
    seconds = sum(c.train_seconds for c in result.cost)
    return {"samples": samples, "train_seconds": round(seconds, 2),
            "samples_per_s": round(samples / seconds, 1),
            "wall_seconds": round(time.perf_counter() - start, 1),
            "final_accuracy": round(float(result.matrix[-1].mean()), 4),
            "matrix": result.matrix.round(4).tolist(),
            "buffer_bytes": module.strategy.buffer.nbytes}


def peak_rss_mib() -> dict:
    """Peak resident memory so far: this process, and its largest finished child (a worker)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main": round(own, 1), "largest_worker": round(child, 1)}


def subset_splits(data: DataSplits, n: int, in_memory: bool) -> DataSplits:
    """The first ``n`` training rows (and the test rows), lazy or read into memory."""
    parts = [data.train.subset(torch.arange(min(n, len(data.train)))), data.val, data.test]
    if in_memory:
        parts = [p.materialize() if len(p) else p for p in parts]
    return DataSplits(*parts, data.n_classes, data.input_shape, data.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="images in the stream")
    parser.add_argument("--subset", type=int, default=20_000, help="images in the speed test")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rss-bound-mib", type=float, default=1536.0)
    parser.add_argument("--root", default="/tmp/continual-streaming")
    parser.add_argument("--part", choices=["all", "write", "stream", "speed"], default="all",
                        help="write the chunks only, or run one part (a fresh process each: "
                        "a part's peak RSS is its own, not the writer's)")
    parser.add_argument("--out", default=str(OUT / "streaming.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # two threads spin against each other on a shared 2-core host
    folder = Path(args.root) / f"synthetic-{args.n}"
    if not (folder / "continual_labels.pt").exists():
        start = time.perf_counter()
        write_litdata(Synthetic(args.n), folder)
        print(f"wrote {args.n:,} images to {folder} in {time.perf_counter() - start:.0f} s")
    if args.part == "write":
        return
    disk = sum(f.stat().st_size for f in folder.iterdir())
    data = litdata_splits(folder, val_fraction=0.0, test_fraction=0.01, seed=0,
                          num_workers=args.workers)
    record = {"n": args.n, "bytes_on_disk": disk, "workers": args.workers,
              "batch_size": args.batch_size, "rss_bound_mib": args.rss_bound_mib,
              "load_before": os.getloadavg(), "machine": f"{platform.machine()}, "
              f"{os.cpu_count()} cores, torch {torch.__version__}, 1 intra-op thread",
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip()}
    if args.part in ("all", "stream"):
        record["stream"] = train(data, args.batch_size)
        record["stream"]["peak_rss_mib"] = peak_rss_mib()
        print("stream", record["stream"])
    if args.part in ("all", "speed"):
        lazy = train(subset_splits(data, args.subset, in_memory=False), args.batch_size)
        memory = train(subset_splits(data, args.subset, in_memory=True), args.batch_size)
        record["speed"] = {"subset": args.subset, "streamed": lazy, "in_memory": memory,
                           "ratio": round(lazy["samples_per_s"] / memory["samples_per_s"], 3)}
        print("speed", record["speed"]["ratio"], lazy["samples_per_s"], memory["samples_per_s"])
    record["load_after"] = os.getloadavg()
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() and args.part != "all" else {}
    if previous.get("n") != args.n:
        previous = {}
    out.write_text(json.dumps({**previous, **record}, indent=1) + "\n")  # parts add up


if __name__ == "__main__":
    sys.exit(main())
