"""What random crop + flip costs per training batch, per sample in Python or batched, against a
reduced ResNet-18's training step; and what uint8 storage saves.

    python -m experiments.data.augmentation      # writes augmentation.md/.json next to this file

A batch of 128 CIFAR-sized images (3 × 32 × 32), ``RandomCrop(32, padding=4)`` and
``RandomHorizontalFlip()``, a fresh draw per sample, on this machine's CPU with one thread:

- the old path: ``TensorData.__getitems__`` applying torchvision v2 to each sample in a loop;
- kornia's ``AugmentationSequential`` of the same two (when kornia is installed);
- the toolkit's batched twins (:func:`continual.data.transforms.batched`), and the whole
  training-input path: gather a uint8 batch, decode it (per-pixel standardisation), augment;
- one training step of the reduced ResNet-18 (nf=20, ~1.1 M weights; SGD, batch 128) on the
  same batch: the cost the augmentation is compared with.

Medians of interleaved repeats (the cores are shared: the load average is recorded).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from continual.data import TensorData
from continual.data.transforms import batched
from continual.module import ContinualModule

HERE = Path(__file__).parent
BATCH, SHAPE = 128, (3, 32, 32)


def reduced_resnet18(n_classes: int = 10, nf: int = 20) -> nn.Module:
    """``continual.nets.ResNet18(nf=20)`` where the package has it, else the same net here."""
    try:
        from continual.nets import ResNet18

        return ResNet18(3, n_classes, nf=nf)
    except ImportError:
        return _LocalResNet18(n_classes, nf)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return (self.body(x) + self.skip(x)).relu()


class _LocalResNet18(nn.Module):
    """BasicBlock, nf=20, [2, 2, 2, 2], stride-1 3x3 stem (GEM / DER's reduced ResNet-18)."""

    def __init__(self, n_classes: int, nf: int = 20) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, nf, 3, 1, 1, bias=False), nn.BatchNorm2d(nf),
                                   nn.ReLU()]
        width = nf
        for stage in range(4):
            out = nf * 2**stage
            layers += [_Block(width, out, 1 if stage == 0 else 2), _Block(out, out, 1)]
            width = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, n_classes)

    def forward(self, x):
        return self.head(self.features(x.float()))


def medians(cases: dict[str, Callable[[], object]], repeats: int
            ) -> dict[str, tuple[float, float]]:
    """Median and best seconds of each case, interleaved so that load hits them alike."""
    for fn in cases.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    load_before = os.getloadavg()
    n = 4096
    pixels = torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8)
    y = torch.randint(0, 10, (n,))
    floats = pixels.float() / 255
    index = torch.randperm(n)[:BATCH]
    recipe = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]
    per_sample = v2.Compose(recipe)
    ours = batched(recipe)

    def old_path():  # TensorData.__getitems__ before: gather, then v2 on each sample
        x = floats.index_select(0, index)
        return torch.stack([per_sample(xi) for xi in x])

    # the new path, as the training step runs it: gather uint8, decode, augment
    from continual.data.splits import DataSplits
    from continual.data.transforms import with_pixels

    empty = TensorData(pixels[:0], y[:0])
    splits = with_pixels(DataSplits(TensorData(pixels, y), empty, empty, 10, SHAPE, "synthetic"),
                         standardize=True)
    module = ContinualModule(reduced_resnet18())
    module.prepare_for(10, pixels[:1], None, normalization=splits.train.normalization,
                       augmentation=recipe)

    def new_path():
        x, _, _ = splits.train.__getitems__(index)
        return module.training_inputs(x)

    batch = floats.index_select(0, index)
    cases: dict[str, Callable[[], object]] = {
        "gather float32, no augmentation": lambda: floats.index_select(0, index),
        "old: gather + torchvision v2 per sample": old_path,
        "batched crop + flip (continual)": lambda: ours(batch),
        "new: gather uint8 + decode + batched crop + flip": new_path,
    }
    try:
        import kornia
        import kornia.augmentation as K

        korn = K.AugmentationSequential(K.RandomCrop((32, 32), padding=4),
                                        K.RandomHorizontalFlip())
        cases["kornia AugmentationSequential crop + flip"] = lambda: korn(batch)
        kornia_version = kornia.__version__
    except ImportError:
        korn, kornia_version = None, None

    net = reduced_resnet18()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    labels = y[index]

    def train_step():
        optimizer.zero_grad()
        F.cross_entropy(net(batch), labels).backward()
        optimizer.step()

    augment = medians(cases, repeats=30)
    step = medians({"reduced ResNet-18 training step": train_step}, repeats=8)
    # fixed cost per call (what an accelerator's host thread pays per batch): batch of 2
    tiny = floats[:2]
    fixed = medians({"batched crop + flip (continual)": lambda: ours(tiny),
                     **({"kornia AugmentationSequential crop + flip": lambda: korn(tiny)}
                        if korn is not None else {})}, repeats=30)
    load_after = os.getloadavg()

    step_s = step["reduced ResNet-18 training step"][0]
    n_params = sum(p.numel() for p in net.parameters())
    memory = {name: {"float32_MB": count * 3072 * 4 / 1e6, "uint8_MB": count * 3072 / 1e6}
              for name, count in (("CIFAR-10/100 train (50,000 × 3 × 32 × 32)", 50_000),)}
    memory["MNIST train (60,000 × 1 × 28 × 28)"] = {"float32_MB": 60_000 * 784 * 4 / 1e6,
                                                     "uint8_MB": 60_000 * 784 / 1e6}
    record = {
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "threads": 1,
                    "platform": platform.platform(), "torch": torch.__version__,
                    "kornia": kornia_version, "load_average_before": load_before,
                    "load_average_after": load_after},
        "batch": BATCH, "shape": list(SHAPE), "net_parameters": n_params,
        "augmentation_ms": {k: v[0] * 1e3 for k, v in augment.items()},
        "augmentation_best_ms": {k: v[1] * 1e3 for k, v in augment.items()},
        "fixed_cost_ms_batch_of_2": {k: v[0] * 1e3 for k, v in fixed.items()},
        "train_step_ms": step_s * 1e3,
        "memory_MB": memory,
    }
    (HERE / "augmentation.json").write_text(json.dumps(record, indent=2) + "\n")
    text = report(record)
    (HERE / "augmentation.md").write_text(text)
    print(text)


def report(r: dict) -> str:
    m, step = r["machine"], r["train_step_ms"]
    best = r["augmentation_best_ms"]
    rows = [f"| {name} | {ms:.2f} | {best[name]:.2f} | {100 * ms / step:.1f} % |"
            for name, ms in r["augmentation_ms"].items()]
    fixed = [f"| {name} | {ms:.3f} |" for name, ms in r["fixed_cost_ms_batch_of_2"].items()]
    mem = [f"| {name} | {v['float32_MB']:.0f} | {v['uint8_MB']:.0f} | 4× |"
           for name, v in r["memory_MB"].items()]
    ours = r["augmentation_ms"]["new: gather uint8 + decode + batched crop + flip"]
    old = r["augmentation_ms"]["old: gather + torchvision v2 per sample"]
    return "\n".join([
        "# Augmentation per training batch: per sample vs batched\n",
        "`python -m experiments.data.augmentation`: a batch of "
        f"{r['batch']} × {' × '.join(map(str, r['shape']))} images, `RandomCrop(32, padding=4)` "
        "+ `RandomHorizontalFlip()`, a fresh draw per sample; medians of interleaved repeats.\n",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} thread, torch {m['torch']}, "
        f"kornia {m['kornia']}; load average {m['load_average_before'][0]:.2f} before, "
        f"{m['load_average_after'][0]:.2f} after (the cores are shared with other work).\n",
        f"Reduced ResNet-18 (nf=20, {r['net_parameters']:,} weights), one SGD training step on "
        f"that batch: **{step:.0f} ms**.\n",
        "| per batch of 128 | median ms | best ms | median, of a ResNet-18 step |",
        "| --- | --- | --- | --- |", *rows, "",
        f"The training step's whole input path (gather uint8, decode with per-pixel "
        f"standardisation, crop, flip) costs **{ours:.2f} ms, {100 * ours / step:.1f} % of a "
        f"step** (target ≤ 10 %), against {old:.1f} ms for the per-sample loop "
        f"({old / ours:.0f}× less).\n",
        "Chosen: the toolkit's own batched crop and flip (plain tensor ops: pad once, gather "
        "each sample's window from a strided view, flip by `torch.where`), converted from the "
        "torchvision transforms configs already name. kornia's modules are accepted as they "
        "are, but not used by default: on this CPU they cost more per batch, and their fixed "
        "Python cost per call (below, a batch of 2) is what an accelerator's host thread would "
        "pay every step, where a ResNet-18 step takes a few milliseconds.\n",
        "| fixed cost per call (batch of 2) | ms |", "| --- | --- |", *fixed, "",
        "## uint8 storage\n",
        "Images are held as they come (uint8) and decoded per batch on the training device; "
        "the decoded floats are bit-identical to the float32 copy held before "
        "(`tests/test_augmentation.py`).\n",
        "| training set | float32 MB | uint8 MB | saving |", "| --- | --- | --- | --- |", *mem,
        ""])


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
