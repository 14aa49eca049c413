"""What a fixed amount of Python costs when it runs between the steps of a larger model.

    python experiments/benchmarks/interleave.py      # writes interleave.md next to this file

The plain fine-tuning loop of the benchmark's MLP 784-400-400-10 (batch 128, 8,000 random
MNIST-sized samples, 2 epochs), alone and with a fixed piece of pure Python after every step
(walking a list of small dicts, about what Lightning's loop does between steps), alternating, 8
repeats each. The question: does Python between the steps cost what it costs on its own (as
on a tiny net, where the caches stay warm)? On a busy host (third session, ~10 ms a step) the
piece itself ran 1.6–2× slower between the steps, and the loop slowed by 1.1× and 2.5× the
piece's cost in two runs. On a quiet host (fourth session, ~3.5 ms a step) the piece ran only
1.2× slower, but the loop slowed by 3.0× and 2.2× its cost in two runs: the kernels after it
are slower (the Python's working set evicts the model's weights and activations from the
caches). So Python between the steps weighs 2–3× what it costs on its own.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # as in speed.py

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from continual.nets import MLP  # noqa: E402

N, BATCH, EPOCHS, WALK = 8000, 128, 2, 6000
JUNK = [{"a": i, "b": str(i), "c": [i] * 8} for i in range(20000)]


def python_work() -> int:
    total = 0
    for d in JUNK[:WALK]:
        total += d["a"] + len(d["c"])
    return total


def loop(x, y, with_python: bool) -> tuple[float, float]:
    """µs per step, and µs per step spent in the Python piece."""
    torch.manual_seed(0)
    net = MLP(784, (400, 400), 10)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    order, inside, start = torch.randperm(N), 0.0, time.perf_counter()
    for _ in range(EPOCHS):
        for s in range(0, N, BATCH):
            idx = order[s:s + BATCH]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if with_python:
                t = time.perf_counter()
                python_work()
                inside += time.perf_counter() - t
    steps = EPOCHS * -(-N // BATCH)
    return (time.perf_counter() - start) / steps * 1e6, inside / steps * 1e6


def main() -> None:
    torch.set_num_threads(1)
    x, y = torch.randn(N, 784), torch.randint(0, 10, (N,))
    loop(x, y, False), loop(x, y, True)  # warm-up
    alone, mixed, inside = [], [], []
    for r in range(8):
        for with_python in ((False, True) if r % 2 == 0 else (True, False)):
            per_step, python = loop(x, y, with_python)
            (mixed if with_python else alone).append(per_step)
            if with_python:
                inside.append(python)
    start = time.perf_counter()
    for _ in range(200):
        python_work()
    standalone = (time.perf_counter() - start) / 200 * 1e6
    a, m, i = statistics.median(alone), statistics.median(mixed), statistics.median(inside)
    text = "\n".join([
        "# Python between the steps of a larger model\n",
        f"MLP 784-400-400-10, batch 128, one intra-op thread, medians of 8 alternating repeats; "
        f"load average {os.getloadavg()[0]:.2f}.\n",
        "| measure | µs a step |", "| --- | --- |",
        f"| plain loop | {a:,.0f} |",
        f"| plain loop + the Python piece after every step | {m:,.0f} |",
        f"| the Python piece on its own (200 calls in a row) | {standalone:,.0f} |",
        f"| the Python piece timed inside the loop | {i:,.0f} |",
        f"| slowdown of the loop | {m - a:,.0f} ({(m - a) / standalone:.1f}× the piece's own cost) |",
    ]) + "\n"
    print(text)
    (Path(__file__).parent / "interleave.md").write_text(text)


if __name__ == "__main__":
    main()
