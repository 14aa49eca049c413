"""How many samples should one importance pass take? EWC's sampled Fisher on 512 samples,
timed at each pass size, for the nets users bring.

    OMP_NUM_THREADS=1 python -m experiments.benchmarks.importance_chunks   # importance_chunks.md

The layer hooks (``per_sample_sums``) run one forward and one backward pass per chunk and
form per-sample gradients from each layer's kept input and output gradient. Larger chunks
cost less per sample (fewer passes, fewer hook calls) until the kept layer outputs spill out
of the CPU's cache. ``fisher_diagonal(batch_size=None)`` picks the size by
``chunk_size``: the layer outputs of one sample, measured by a forward pass, against a
budget (``CHUNK_BYTES``). This script checks that choice against a sweep. Nets: the MLP
784-400-400-10 and the user's CNN of ``vs_avalanche.py`` on MNIST digits, and the reduced
ResNet-18 (``continual.nets.ResNet18``) on random 3x32x32 inputs; one intra-op thread;
minimum of 3 timings per cell (the least disturbed by other jobs).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402

from continual import ContinualModule  # noqa: E402
from continual.data import TensorData  # noqa: E402
from continual.nets import ResNet18  # noqa: E402
from continual.runner import prepare  # noqa: E402
from continual.strategies.importance import chunk_size, fisher_diagonal  # noqa: E402
from experiments.benchmarks.speed import load_stream, machine  # noqa: E402
from experiments.benchmarks.vs_avalanche import fresh  # noqa: E402

HERE = Path(__file__).parent
SIZES = (16, 32, 64, 128, 256, 512, 1024)


def nets() -> dict[str, tuple[torch.nn.Module, TensorData]]:
    stream = load_stream()
    out = {}
    for name in ("MLP", "CNN"):
        module = ContinualModule(fresh(name))
        prepare(stream, module)  # the net decodes MNIST's uint8 pixels itself
        out[name] = (module.net, stream[0].train.sample(512, 0))
    torch.manual_seed(0)
    images = TensorData(torch.randn(512, 3, 32, 32), torch.randint(0, 10, (512,)))
    out["ResNet-18 (reduced)"] = (ResNet18(), images)
    return out


def seconds(net: torch.nn.Module, data: TensorData, size: int | None, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fisher_diagonal(net, data, mode="sampled", batch_size=size)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.importance_chunks")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "importance_chunks.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    info = machine()
    lines = ["| net | " + " | ".join(str(s) for s in SIZES) + " | chosen |",
             "| --- |" + " --- |" * (len(SIZES) + 1)]
    for name, (net, data) in nets().items():
        chosen = chunk_size(net, data.x[:1])
        cells = [seconds(net, data, s, args.repeats) for s in SIZES]
        auto = seconds(net, data, None, args.repeats)
        best = min(cells)
        row = " | ".join(f"**{1000 * c:.0f}**" if c == best else f"{1000 * c:.0f}"
                         for c in cells)
        lines.append(f"| {name} | {row} | {chosen}: {1000 * auto:.0f} |")
        print(lines[-1], flush=True)
    text = (
        "# Samples per importance pass\n\n"
        "`python -m experiments.benchmarks.importance_chunks`: milliseconds for EWC's sampled "
        "Fisher on 512 samples at each pass size (columns), least of "
        f"{args.repeats}; best in bold; *chosen*: the size `chunk_size` picks and its time. "
        f"Machine: {info['cpu']}, {info['cores']} cores, 1 intra-op thread, torch "
        f"{info['torch']}; load average {info['load'][0]:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end.\n\n" + "\n".join(lines) + "\n")
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
