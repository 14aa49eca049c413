"""Every strategy through the toolkit against the same computation as a plain PyTorch loop.

    python -m experiments.benchmarks.speed --repeats 5     # every strategy: speed.md, speed.json
    python -m experiments.benchmarks.speed --repeats 15 --strategies FineTune,EWC,ER --no-memory \
        --out experiments/benchmarks/speed_targets.json    # the three targets: speed_targets.md
    python -m experiments.benchmarks.speed --repeats 1 --epochs 1 --strategies FineTune \
        --no-memory --out /tmp/speed.json                 # a quick look (a few seconds)
    python -m experiments.benchmarks.speed --report experiments/benchmarks/speed.json  # the .md again

Run from the repository root. ``--out`` names the JSON; the Markdown report is written beside
it under the same name.

Split-MNIST (the offline MNIST test set, 8,000 train / 2,000 test, seed 0; 5 tasks of 2
classes), MLP 784-400-400-10, Adam 1e-3, batch 128. For each strategy (its
``configs/strategy/*.yaml``) the toolkit's ``run()`` and the hand-written loop of
``experiments/benchmarks/plain.py`` alternate, in reversed strategy order every other repeat, so drift in the load of
a shared machine hits both alike; ratios are medians of the per-repeat ratios.

Toolkit training time = the run's ``Trainer`` construction + each task's ``Trainer.fit``
(everything Lightning does for the task); the plain loop's = optimizer construction + its epochs. Both are
split into the fixed part (start-up, tear-down) and the loop. The strategy's own work around
training (EWC's Fisher, a memory filled from a task) and the evaluation of every task after
each task are timed apart, in both. Peak memory: a fresh process per strategy and
implementation, peak RSS above the RSS before training (Linux ``VmHWM``, reset through
``/proc/self/clear_refs``), plus the bytes of the strategy's state (its ``state_dict``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

# A CPU benchmark. On a machine without a GPU, torch's CUDA build asks NVML for devices at
# every optimizer step (~0.15 ms here), in both implementations alike: hide the probe, so the
# plain loop is as fast as it can be and the ratio is the stricter one.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402
import yaml  # noqa: E402
from lightning.pytorch import Trainer  # noqa: E402

import continual.fitting  # noqa: E402
from continual import ContinualModule, run  # noqa: E402
from continual.data import idx_folder, split_classes  # noqa: E402
from continual.nets import MLP  # noqa: E402
from experiments.benchmarks import plain  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

MNIST = ROOT.parent / "shared" / "data" / "mnist-t10k"
CONFIGS = {
    "FineTune": "finetune", "FullRetrain": "full_retrain", "EWC": "ewc",
    "OnlineEWC": "online_ewc", "SI": "si", "MAS": "mas", "LwF": "lwf", "ER": "er",
    "A-GEM": "agem", "DER": "der", "DER++": "derpp", "ER-ACE": "er_ace", "GDumb": "gdumb",
}
TARGETS = {"FineTune": 1.10, "EWC": 1.25, "ER": 2.1}  # × the plain fine-tuning loop


# ---------------------------------------------------------------- timing the toolkit's run()

def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class TimedTrainer(Trainer):
    """The runner's Trainer, recording its construction and each ``fit``'s times (the run's
    one Trainer fits every task: its construction counts with the first task's)."""

    records: list[dict] = []

    def __init__(self, *args, **kwargs) -> None:
        start = clock()
        super().__init__(*args, **kwargs)
        self._built = (start, clock())

    def fit(self, *args, **kwargs) -> None:
        start = clock()
        self._phases: dict[str, tuple[float, float]] = {}
        super().fit(*args, **kwargs)
        end = clock()
        (b0, b1), p = self._built, self._phases
        self._built = (b1, b1)  # built once: the next fits cost no construction
        TimedTrainer.records.append({
            "build": b1[0] - b0[0], "fit": end[0] - start[0],
            "cpu": (b1[1] - b0[1]) + (end[1] - start[1]),
            "setup": p["train_start"][0] - start[0],
            "loop": p["train_end"][0] - p["train_start"][0],
            "teardown": end[0] - p["train_end"][0],
        })


class TimedModule(ContinualModule):
    """The toolkit's module, recording when the epochs start and end.

    Module hooks, not a callback: Lightning calls every callback at some ten places a step,
    so a timing callback would itself add to the time it measures.
    """

    def on_train_start(self) -> None:
        super().on_train_start()
        self.trainer._phases["train_start"] = clock()

    def on_train_end(self) -> None:
        super().on_train_end()
        self.trainer._phases["train_end"] = clock()


def make_strategy(name: str):
    """The strategy of ``configs/strategy/<file>.yaml``, by its name here or the file's stem."""
    config = ROOT / "configs" / "strategy" / f"{CONFIGS.get(name, name)}.yaml"
    spec = yaml.safe_load(config.read_text())
    spec = spec["strategy"]
    module, cls = spec["class_path"].rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)(**spec.get("init_args", {}))


def new_net(hidden: tuple[int, ...] = (400, 400)) -> MLP:
    torch.manual_seed(0)  # the same initial weights for both implementations
    return MLP(784, hidden, 10)


def toolkit(stream, name: str, epochs: int, batch_size: int, tasks: int | None = None,
            module: type[TimedModule] | None = None, hidden: tuple[int, ...] = (400, 400)):
    # The runner builds its Trainer by this name: the timed one records each task's phases.
    continual.fitting.Trainer = TimedTrainer
    TimedTrainer.records = []
    module = (module or TimedModule)(new_net(hidden), make_strategy(name))
    if tasks is not None:
        stream = type(stream)(stream.tasks[:tasks], stream.scenario, stream.n_classes,
                              stream.input_shape)
    result = run(stream, module, batch_size=batch_size, echo=None,
                 trainer={"max_epochs": epochs, "accelerator": "cpu"})
    costs = []
    for record, cost, row in zip(TimedTrainer.records, result.cost, result.matrix):
        costs.append({**record, "train": record["build"] + record["fit"],
                      "train_cpu": record["cpu"], "strategy": cost.strategy_seconds,
                      "eval": cost.eval_seconds, "samples": cost.train_samples,
                      "row": row.tolist()})
    return costs, module


def baseline(stream, name: str, epochs: int, batch_size: int, tasks: int | None = None,
             hidden: tuple[int, ...] = (400, 400)):
    recipe = plain.RECIPES[name]()
    stream = plain.floats(stream)  # decoded once, outside the timed loop
    return (plain.plain_run(stream, new_net(hidden), recipe, epochs, batch_size, tasks=tasks),
            recipe)


# ---------------------------------------------------------------- memory, in a fresh process

def rss_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def state_bytes(obj, depth: int = 0) -> int:
    """Bytes of the tensors reachable from ``obj`` (dicts, lists, modules, plain objects)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if depth > 4:
        return 0
    if isinstance(obj, torch.nn.Module):
        return state_bytes(obj.state_dict(), depth + 1)
    if isinstance(obj, dict):
        return sum(state_bytes(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(state_bytes(v, depth + 1) for v in obj)
    if hasattr(obj, "__dict__") and not callable(obj):
        return state_bytes(vars(obj), depth + 1)
    return 0


def memory_probe(name: str, implementation: str, epochs: int, batch_size: int) -> dict:
    stream = load_stream()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = rss_kib("VmRSS")
    if implementation == "toolkit":
        _, module = toolkit(stream, name, epochs, batch_size)
        state = state_bytes(module.strategy.state_dict())
    else:
        _, recipe = baseline(stream, name, epochs, batch_size)
        state = state_bytes(vars(recipe))
    return {"peak_mib": (rss_kib("VmHWM") - before) / 1024, "state_kib": state / 1024}


def memory_of(name: str, implementation: str, args) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", __spec__.name, "--memory-probe", name, implementation,
         "--epochs", "1", "--batch-size", str(args.batch_size), "--threads", str(args.threads)],
        capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the run

def load_stream():
    data = idx_folder(MNIST, val_fraction=0.0, test_fraction=0.2, seed=0)
    return split_classes(data, n_tasks=5, scenario="class")


def machine() -> dict:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return {"cpu": cpu.group(1) if cpu else platform.processor(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "load": os.getloadavg()}


def total(costs: list[dict], key: str) -> float:
    return sum(c[key] for c in costs)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.speed", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats (default 3)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per task (default 5)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads, for both implementations (default 1)")
    parser.add_argument("--strategies", default=",".join(CONFIGS),
                        help=f"comma-separated, of {', '.join(CONFIGS)} (default: all)")
    parser.add_argument("--uint8", action="store_true",
                        help="the toolkit reads MNIST as stored (uint8, decoded per batch) "
                             "instead of the plain loop's floats")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory probes (a fresh process per cell)")
    parser.add_argument("--out", default=str(HERE / "speed.json"),
                        help="the JSON to write; the .md report goes beside it "
                             "(default experiments/benchmarks/speed.json)")
    parser.add_argument("--report", metavar="JSON",
                        help="only rewrite the .md report of a recorded JSON")
    parser.add_argument("--memory-probe", nargs=2, metavar=("NAME", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        report(Path(args.report))
        return
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(memory_probe(*args.memory_probe, args.epochs, args.batch_size)))
        return

    names = args.strategies.split(",")
    stream = load_stream() if args.uint8 else plain.floats(load_stream())
    info = {"machine": machine(), "epochs": args.epochs, "batch_size": args.batch_size,
            "inputs": "uint8, decoded per batch" if args.uint8 else "float32 (both)",
            "repeats": args.repeats, "train_sizes": [len(t.train) for t in stream],
            "test_sizes": [len(t.test) for t in stream]}
    print(info, flush=True)
    toolkit(stream, "EWC", 1, args.batch_size, tasks=2)  # warm-up: imports, first fits, torch.func
    baseline(stream, "EWC", 1, args.batch_size, tasks=2)
    runs: dict[str, dict[str, list]] = {n: {"toolkit": [], "plain": []} for n in names}
    for r in range(args.repeats):
        order = names if r % 2 == 0 else names[::-1]
        for k, name in enumerate(order):
            pair = ("plain", "toolkit") if (r + k) % 2 == 0 else ("toolkit", "plain")
            for impl in pair:
                go = toolkit if impl == "toolkit" else baseline
                runs[name][impl].append(go(stream, name, args.epochs, args.batch_size)[0])
            t, p = (total(runs[name][i][-1], "train") for i in ("toolkit", "plain"))
            print(f"repeat {r} {name:12s} toolkit {t:6.2f} s  plain {p:6.2f} s  "
                  f"ratio {t / p:.3f}  load {os.getloadavg()[0]:.2f}", flush=True)
    memory = {}
    if not args.no_memory:
        for name in names:
            memory[name] = {impl: memory_of(name, impl, args) for impl in ("toolkit", "plain")}
            print(name, memory[name], flush=True)
    info["machine"]["load_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps({"info": info, "runs": runs, "memory": memory}))
    report(Path(args.out))


# ---------------------------------------------------------------- the report

def report(path: Path) -> None:
    data = json.loads(path.read_text())
    info, runs, memory = data["info"], data["runs"], data["memory"]
    m = info["machine"]
    med = statistics.median

    def per_repeat(name, impl, key):
        return [total(costs, key) for costs in runs[name][impl]]

    plain_ft = med(per_repeat("FineTune", "plain", "train")) if "FineTune" in runs else None
    lines = [
        "# Toolkit against a plain PyTorch loop, every strategy\n",
        f"Split-MNIST (8,000 train / 2,000 test, 5 tasks), MLP 784-400-400-10, Adam 1e-3, batch "
        f"{info['batch_size']}, {info['epochs']} epochs per task, {info['repeats']} alternating "
        f"repeats, inputs {info.get('inputs', 'float32 (both)')}. Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, "
        f"Python {m['python']}, **{m['threads']} intra-op thread(s) for both implementations**; "
        f"load average at start {m['load'][0]:.2f} / {m['load'][1]:.2f} / {m['load'][2]:.2f}, "
        f"at end {m['load_end'][0]:.2f} / {m['load_end'][1]:.2f} / {m['load_end'][2]:.2f} "
        "(1 / 5 / 15 min).\n",
        "Training time is the sum over the 5 tasks (toolkit: `Trainer` construction + `fit`; "
        "plain: optimizer + epochs). *ratio* = median over repeats of toolkit ÷ plain, each pair "
        "measured back to back; *CPU ratio* the same on process CPU time (less sensitive to "
        "other jobs); *× plain fine-tune* = the toolkit's median time ÷ the plain fine-tuning "
        "loop's, the issue's targets. Spread: min–max of the per-repeat ratios.\n",
        "| strategy | toolkit samples/s | plain samples/s | ratio (spread) | CPU ratio | "
        "× plain fine-tune | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in runs:
        t, p = per_repeat(name, "toolkit", "train"), per_repeat(name, "plain", "train")
        tc, pc = per_repeat(name, "toolkit", "train_cpu"), per_repeat(name, "plain", "train_cpu")
        ratios = [a / b for a, b in zip(t, p)]
        samples = total(runs[name]["toolkit"][0], "samples")
        plain_samples = total(runs[name]["plain"][0], "samples")
        vs_ft = med(t) / plain_ft if plain_ft else float("nan")
        target = TARGETS.get(name)
        verdict = "" if target is None else f"≤ {target:.2f}× {'✓' if vs_ft <= target else '✗'}"
        lines.append(
            f"| {name} | {samples / med(t):,.0f} | {plain_samples / med(p):,.0f} | "
            f"{med(ratios):.3f} ({min(ratios):.2f}–{max(ratios):.2f}) | "
            f"{med([a / b for a, b in zip(tc, pc)]):.3f} | {vs_ft:.2f}× | {verdict} |")

    lines += ["\n## Per-task fixed costs (toolkit, median over repeats, ms per task)\n",
              "`Trainer()` = construction (one Trainer fits every task: its time over the tasks); "
              "setup = `fit` up to the first epoch; teardown = after "
              "the last epoch until `fit` returns; strategy = the strategy's work around "
              "training (Fisher / importance / memory fill), plain loop's alongside; eval = "
              "accuracy on all 5 test sets after each task (2,000 samples), and its share of "
              "that task's training time (mean and worst task).\n",
              "| strategy | `Trainer()` | setup | teardown | loop s (toolkit / plain) | "
              "strategy (toolkit / plain) | eval (toolkit / plain) | eval share mean / max |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in runs:
        tk, pl = runs[name]["toolkit"], runs[name]["plain"]
        n = len(tk[0])

        def ms(costs_list, key, n=n):
            return 1000 * med([total(c, key) / n for c in costs_list])

        shares = [c["eval"] / c["train"] for costs in tk for c in costs]
        per_task_share = [med([costs[i]["eval"] / costs[i]["train"] for costs in tk])
                          for i in range(n)]
        lines.append(
            f"| {name} | {ms(tk, 'build'):.1f} | {ms(tk, 'setup'):.1f} | {ms(tk, 'teardown'):.1f} "
            f"| {med([total(c, 'loop') for c in tk]):.2f} / "
            f"{med([total(c, 'train') for c in pl]):.2f} "
            f"| {ms(tk, 'strategy'):.0f} / {ms(pl, 'strategy'):.0f} "
            f"| {ms(tk, 'eval'):.0f} / {ms(pl, 'eval'):.0f} "
            f"| {100 * med(shares):.1f} % / {100 * max(per_task_share):.1f} % |")

    if memory:
        lines += ["\n## Peak memory\n",
                  "A fresh process per cell, 1 epoch per task: peak RSS above the RSS before "
                  "training (MiB), and the strategy's state (anchors, importances, memories, "
                  "old model: the tensors of its `state_dict`; plain: the recipe's tensors), KiB.\n",
                  "| strategy | toolkit peak RSS Δ | plain peak RSS Δ | toolkit state | plain state |",
                  "| --- | --- | --- | --- | --- |"]
        for name, cell in memory.items():
            t, p = cell["toolkit"], cell["plain"]
            lines.append(f"| {name} | {t['peak_mib']:.1f} | {p['peak_mib']:.1f} | "
                         f"{t['state_kib']:,.0f} | {p['state_kib']:,.0f} |")

    final = [(name, runs[name]["toolkit"][0][-1]["row"], runs[name]["plain"][0][-1]["row"])
             for name in runs]
    lines += ["\n## Same computation? Final average accuracy, toolkit / plain\n",
              "Fine-tuning and full retraining run the very same steps (same order, same "
              "initial weights), so they agree up to float rounding; the replay recipes keep "
              "other samples in memory (a Vitter reservoir), so they agree only in distribution.\n",
              "| strategy | toolkit % | plain % |", "| --- | --- | --- |"]
    for name, a, b in final:
        lines.append(f"| {name} | {100 * statistics.mean(a):.1f} | {100 * statistics.mean(b):.1f} |")
    out = path.with_suffix(".md")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
