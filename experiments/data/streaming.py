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
import threading
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


def train(data: DataSplits, batch_size: int, storage: str = "auto") -> dict:
    stream = split_classes(data, n_tasks=5)
    module = ContinualModule(net(), ExperienceReplay(2000, seed=0, storage=storage))
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


class RssWatch:
    """Peaks of this process's resident memory by kind, read from /proc every 0.2 s.

    ``RssAnon`` is private memory (tensors, Python objects); ``RssFile`` is pages of files
    mapped into the process, here litdata's memory-mapped chunks: clean page cache that the
    kernel drops under pressure, counted in RSS while mapped.
    """

    def __init__(self) -> None:
        self.peak: dict[str, float] = {}
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            for line in Path("/proc/self/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    mib = int(value.split()[0]) / 1024
                    self.peak[key] = round(max(self.peak.get(key, 0.0), mib), 1)
            time.sleep(0.2)


def peak_rss_mib(watch: RssWatch) -> dict:
    """Peak resident memory so far: this process by kind, and its largest finished child (a
    DataLoader worker: ru_maxrss, all kinds together)."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main": watch.peak, "largest_worker_total": round(child, 1)}


def subset_splits(data: DataSplits, n: int, in_memory: bool) -> DataSplits:
    """The first ``n`` training rows (and the test rows), lazy or read into memory."""
    parts = [data.train.subset(torch.arange(min(n, len(data.train)))), data.val, data.test]
    if in_memory:
        parts = [p.materialize() if len(p) else p for p in parts]
    return DataSplits(*parts, data.n_classes, data.input_shape, data.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="images in the stream")
    parser.add_argument("--subset", type=int, default=60_000, help="images in the speed test")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rss-bound-mib", type=float, default=1024.0,
                        help="bound on the main process's private memory (RssAnon)")
    parser.add_argument("--root", default="/tmp/continual-streaming")
    parser.add_argument("--part", choices=["all", "write", "stream", "speed", "rows"],
                        default="all",
                        help="write the chunks only, or run one part (a fresh process each: "
                        "a part's peak RSS is its own, not the writer's)")
    parser.add_argument("--out", default=str(OUT / "streaming.json"))
    args = parser.parse_args()
    watch = RssWatch()
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
        record["stream"]["peak_rss_mib"] = peak_rss_mib(watch)
        print("stream", record["stream"])
    if args.part in ("all", "speed"):
        lazy = train(subset_splits(data, args.subset, in_memory=False), args.batch_size)
        memory = train(subset_splits(data, args.subset, in_memory=True), args.batch_size)
        record["speed"] = {"subset": args.subset, "streamed": lazy, "in_memory": memory,
                           "ratio": round(lazy["samples_per_s"] / memory["samples_per_s"], 3)}
        print("speed", record["speed"]["ratio"], lazy["samples_per_s"], memory["samples_per_s"])
    if args.part in ("all", "rows"):  # the memory as rows, read back at every replay
        record["rows"] = train(subset_splits(data, args.subset, in_memory=False),
                               args.batch_size, storage="rows")
        print("rows", record["rows"]["samples_per_s"], record["rows"]["buffer_bytes"])
    record["load_after"] = os.getloadavg()
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() and args.part != "all" else {}
    if previous.get("n") != args.n:
        previous = {}
    record = {**previous, **record}  # parts add up
    out.write_text(json.dumps(record, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(record))


def markdown(r: dict) -> str:
    """The record as a short Markdown table."""
    lines = ["# Streaming from disk vs in memory (litdata chunks, ER(2,000))\n",
             f"{r['n']:,} synthetic 3×64×64 uint8 images, {r['bytes_on_disk'] / 2**30:.2f} GiB "
             f"on disk; 5 class-incremental tasks, 1 epoch each, batch {r['batch_size']}, "
             f"{r['workers']} DataLoader workers; {r['machine']}; commit {r['commit']}.\n"]
    if "stream" in r:
        s, rss = r["stream"], r["stream"]["peak_rss_mib"]
        main = rss["main"] if isinstance(rss["main"], dict) else {"VmRSS": rss["main"]}
        anon = main.get("RssAnon", float("nan"))
        lines += ["| whole stream | value |", "| --- | --- |",
                  f"| samples trained | {s['samples']:,} |",
                  f"| samples/s (training) | {s['samples_per_s']:,.0f} |",
                  f"| final average accuracy | {s['final_accuracy']:.3f} |",
                  f"| replay memory | {s['buffer_bytes'] / 2**20:.1f} MiB |",
                  f"| main process, peak private memory (RssAnon) | {anon:,.0f} MiB "
                  f"(bound {r['rss_bound_mib']:,.0f} MiB: "
                  f"{'within' if anon <= r['rss_bound_mib'] else 'EXCEEDED'}) |",
                  f"| main process, peak file-backed pages (RssFile: libraries, mapped chunks) | "
                  f"{main.get('RssFile', float('nan')):,.0f} MiB |",
                  f"| main process, peak VmRSS | {main.get('VmRSS', float('nan')):,.0f} MiB |",
                  f"| largest worker, peak RSS (all kinds) | "
                  f"{rss.get('largest_worker_total', rss.get('largest_worker')):,.0f} MiB |", ""]
    if "speed" in r:
        sp = r["speed"]
        lines += [f"Speed on a subset that fits in memory ({sp['subset']:,} training images):\n",
                  "| path | samples/s |", "| --- | --- |",
                  f"| in memory (TensorData) | {sp['in_memory']['samples_per_s']:,.0f} |",
                  f"| streamed ({r['workers']} workers) | {sp['streamed']['samples_per_s']:,.0f} |",
                  f"| ratio streamed / in memory | **{sp['ratio']:.2f}×** |", ""]
        if "rows" in r:
            rows, copies = r["rows"], sp["streamed"]
            lines += ["The streamed run's replay memory (`storage=\"auto\"`) holds copies: "
                      f"{copies['buffer_bytes'] / 2**20:.1f} MiB, under the 1 GiB budget. "
                      "Kept as rows instead (`storage=\"rows\"`), it holds "
                      f"{rows['buffer_bytes'] / 2**10:.0f} KiB and reads each replayed item "
                      f"back: {rows['samples_per_s']:,.0f} samples/s, "
                      f"{rows['samples_per_s'] / sp['in_memory']['samples_per_s']:.2f}× the "
                      "in-memory path (same matrix: "
                      f"{'yes' if rows['matrix'] == copies['matrix'] else 'NO'}).", ""]
    lines.append(f"Load average (1, 5, 15 min) before: {[round(v, 1) for v in r['load_before']]}, "
                 f"after: {[round(v, 1) for v in r['load_after']]} (a shared 2-core host).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
