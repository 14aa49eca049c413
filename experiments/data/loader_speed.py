"""Batching by index slicing (TensorData) against a standard per-sample DataLoader.

    python -m experiments.data.loader_speed     # writes loader_speed.md next to this file

Same tensors (MNIST-sized, 8,000 × 1 × 28 × 28 float32), same batch size, shuffled; one
epoch of iteration, median of 7 repeats, both measured in the same process.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from continual.data import TensorData, pass_batch


def epoch_seconds(loader: DataLoader) -> float:
    start = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    x, y = torch.randn(8000, 1, 28, 28), torch.randint(0, 10, (8000,))
    rows = []
    for batch in (32, 128, 512):
        fast = DataLoader(TensorData(x, y), batch_size=batch, shuffle=True, collate_fn=pass_batch)
        plain = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
        times = {"slicing": [], "standard": []}
        for _ in range(7):
            times["slicing"].append(epoch_seconds(fast))
            times["standard"].append(epoch_seconds(plain))
        f, p = statistics.median(times["slicing"]), statistics.median(times["standard"])
        rows.append(f"| {batch} | {f * 1000:.1f} | {p * 1000:.1f} | {p / f:.1f}× |")
    text = "\n".join([
        "# Batching speed: index slicing vs a standard DataLoader\n",
        f"8,000 × 1 × 28 × 28 float32, shuffled, one epoch, median of 7; {platform.machine()}, "
        f"{os.cpu_count()} cores, 1 thread, torch {torch.__version__}.\n",
        "| batch | slicing ms/epoch | standard ms/epoch | speed-up |", "| --- | --- | --- | --- |",
        *rows])
    (Path(__file__).parent / "loader_speed.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
