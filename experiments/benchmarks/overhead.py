"""Where the toolkit's overhead over a plain loop goes: Lightning's loop, or the toolkit's step.

    python -m experiments.benchmarks.overhead      # ~3 min on 2 cores: overhead.md next to this file
    python -m experiments.benchmarks.overhead --repeats 1 --out /tmp/overhead.md   # a quick look

FineTune on Split-MNIST (5 tasks x 5 epochs, batch 128, 325 steps), one intra-op thread, with
the benchmark's MLP 784-400-400-10 and with a 784-8-10 one whose arithmetic is negligible.
Four forms, run back to back in alternating order, per step (epochs only, µs):

- *plain loop*: the hand-written loop of ``experiments/benchmarks/plain.py`` (batches by
  index slicing, the optimizer called directly);
- *Lightning, empty step*: the toolkit's ``run()`` with a ``training_step`` that returns at
  once: every batch fetched and gathered, every hook of Lightning's loop, no arithmetic;
- *Lightning, plain step*: the same with the plain loop's step inside (forward, loss,
  ``zero_grad``, ``backward``, the optimizer's ``step``);
- *toolkit*: the toolkit's own step (NaN guard, task mask, the strategy's loss and hooks,
  sample count, through Lightning's manual optimisation).

So *Lightning, plain step* − *plain loop* is what Lightning's loop costs around a step, and
*toolkit* − *Lightning, plain step* what the toolkit's step adds. Medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # as in speed.py

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from experiments.benchmarks import speed  # noqa: E402

HERE = Path(__file__).parent


class EmptyStep(speed.TimedModule):
    def training_step(self, batch, batch_idx):
        return None


class PlainStep(speed.TimedModule):
    """The plain loop's step inside Lightning's loop, on the raw optimizer."""

    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        optimizer = self.trainer.optimizers[0]
        loss = F.cross_entropy(self.net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return None


FORMS = {"plain loop": None, "Lightning, empty step": EmptyStep,
         "Lightning, plain step": PlainStep, "toolkit": speed.TimedModule}


def per_step(stream, form: str, steps: int, hidden: tuple[int, ...]) -> tuple[float, float]:
    """µs per step of the epochs, and ms per task of everything else in training."""
    if FORMS[form] is None:
        costs = speed.baseline(stream, "FineTune", 5, 128, hidden=hidden)[0]
        return sum(c["train"] for c in costs) / steps * 1e6, 0.0
    costs = speed.toolkit(stream, "FineTune", 5, 128, module=FORMS[form], hidden=hidden)[0]
    fixed = statistics.mean(c["train"] - c["loop"] for c in costs) * 1e3
    return sum(c["loop"] for c in costs) / steps * 1e6, fixed


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9,
                        help="alternating repeats of the four forms (default 9)")
    parser.add_argument("--out", default=str(HERE / "overhead.md"),
                        help="the Markdown to write (default experiments/benchmarks/overhead.md)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    stream = speed.load_stream()
    steps = sum(-(-len(t.train) // 128) for t in stream) * 5
    machine = speed.machine()
    lines = ["# The training step, layer by layer\n",
             f"FineTune, Split-MNIST, 5 tasks x 5 epochs = {steps} steps of 128, epochs only "
             f"(µs per step, median of {args.repeats} alternating repeats); {machine['cpu']}, "
             f"{machine['cores']} cores, one intra-op thread, torch {machine['torch']}; load "
             f"average {os.getloadavg()[0]:.2f} at the start.\n"]
    for label, hidden in (("MLP 784-400-400-10 (the benchmark)", (400, 400)),
                          ("MLP 784-8-10 (arithmetic negligible)", (8,))):
        for form in FORMS:  # warm-up
            speed.toolkit(stream, "FineTune", 1, 128, tasks=2, module=FORMS[form] or EmptyStep,
                          hidden=hidden)
        speed.baseline(stream, "FineTune", 1, 128, tasks=2, hidden=hidden)
        times: dict[str, list[float]] = {form: [] for form in FORMS}
        fixed: dict[str, list[float]] = {form: [] for form in FORMS}
        for r in range(args.repeats):
            for form in (list(FORMS) if r % 2 == 0 else list(FORMS)[::-1]):
                us, ms = per_step(stream, form, steps, hidden)
                times[form].append(us)
                fixed[form].append(ms)
        med = {form: statistics.median(v) for form, v in times.items()}
        plain = med["plain loop"]
        lines += [f"\n## {label}\n", "| form | µs per step | − plain loop | × plain loop | "
                  "fixed ms per task (`Trainer()`, set-up, tear-down) |",
                  "| --- | --- | --- | --- | --- |"]
        for form, us in med.items():
            cost = "—" if FORMS[form] is None else f"{statistics.median(fixed[form]):.1f}"
            lines.append(f"| {form} | {us:,.0f} | {us - plain:+,.0f} | {us / plain:.3f} "
                         f"| {cost} |")
        lines.append(f"\nLightning's loop around a step: **{med['Lightning, plain step'] - plain:+,.0f}"
                     f" µs**; the toolkit's step on top of it: **{med['toolkit'] - med['Lightning, plain step']:+,.0f}"
                     " µs**.")
        print("\n".join(lines), flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
