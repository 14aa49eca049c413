"""Split-CIFAR-shaped training throughput on one GPU: the toolkit's run against a plain loop.

    python -m experiments.gpu.throughput            # a CUDA GPU: writes throughput.md/.json here
    python -m experiments.gpu.throughput --smoke    # any CPU, tiny sizes, < 1 min: the script works

**Prepared, not yet run on a GPU**: no GPU was lent to the session that wrote it; the
``--smoke`` record beside it (throughput_smoke.md) shows the script running end to end on a
CPU. One run of the full size takes a few minutes on one GPU.

What runs, for FineTune, EWC and DER++, once through the toolkit and once as a hand-written
PyTorch loop on the same GPU, same data, same initial weights:

- data: synthetic, shaped as Split-CIFAR-10: uint8 images 3 × 32 × 32, 10 classes, 5 tasks of
  2 classes, 5,000 training and 1,000 test images per class, held on the GPU as uint8
  (``data_on_device=True``) and decoded per batch with CIFAR's per-channel mean and std;
- net: the reduced ResNet-18 (nf=20, ~1.1 M weights) in ``channels_last``;
- training: bf16 autocast (``precision="bf16-mixed"``), SGD (lr 0.05, momentum 0.9, fresh
  per task), batch 128, ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip`` drawn per
  sample on the GPU, for new and replayed samples alike;
- EWC: λ 100, the empirical Fisher on 512 samples per task (per-sample gradients);
  DER++: α 0.1, β 0.5, a reservoir memory of 500 on the GPU, two replay batches per step.

Reported: training samples per second (the fits only) and the whole run's (with the
strategies' end-of-task work and the accuracy matrix), toolkit / plain.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from continual import ContinualModule, run
from continual.data import TensorData, augment, split_classes
from continual.data.splits import DataSplits
from continual.data.tensors import PixelNormalization
from continual.strategies import EWC, DERpp, FineTune
from experiments.data.augmentation import reduced_resnet18

HERE = Path(__file__).parent
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
LR, MOMENTUM, LAM, ALPHA, BETA = 0.05, 0.9, 100.0, 0.1, 0.5
FULL = {"train_per_class": 5000, "test_per_class": 1000, "batch": 128, "epochs": 1, "nf": 20,
        "ewc_samples": 512, "buffer": 500}
SMOKE = {"train_per_class": 16, "test_per_class": 4, "batch": 16, "epochs": 1, "nf": 4,
         "ewc_samples": 16, "buffer": 32}


def synthetic_cifar(train_per_class: int, test_per_class: int, seed: int = 0) -> DataSplits:
    """uint8 ``[N, 3, 32, 32]`` images: a colour and a stripe per class under noise."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.randint(40, 216, (10, 3, 1, 1), generator=g)

    def part(per_class: int) -> TensorData:
        y = torch.arange(10).repeat_interleave(per_class)
        x = colours[y] + torch.randint(-40, 41, (len(y), 3, 32, 32), generator=g)
        rows = torch.arange(32)
        x[:, :, :, :] += (20 * ((rows[None, :] // (y[:, None] + 2)) % 2))[:, None, :, None]
        return TensorData(x.clamp(0, 255).to(torch.uint8), y, normalization=normalization)

    normalization = PixelNormalization(torch.tensor(CIFAR_MEAN).view(3, 1, 1),
                                       torch.tensor(CIFAR_STD).view(3, 1, 1))
    train, test = part(train_per_class), part(test_per_class)
    empty = TensorData(train.x[:0], train.y[:0], normalization=normalization)
    return DataSplits(train, empty, test, 10, (3, 32, 32), "synthetic-cifar10")


def new_net(nf: int, device: torch.device) -> nn.Module:
    torch.manual_seed(0)  # the same initial weights for the toolkit and the plain loop
    return reduced_resnet18(10, nf).to(device, memory_format=torch.channels_last)


def strategy(name: str, size: dict):
    return {"FineTune": FineTune,
            "EWC": lambda: EWC(lam=LAM, fisher="empirical", n_samples=size["ewc_samples"]),
            "DER++": lambda: DERpp(alpha=ALPHA, beta=BETA, buffer_size=size["buffer"])}[name]()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------ the toolkit

def toolkit(stream, name: str, size: dict, device: torch.device) -> dict:
    module = ContinualModule(new_net(size["nf"], device), strategy(name, size),
                             optimizer=partial(torch.optim.SGD, lr=LR, momentum=MOMENTUM))
    trainer = {"accelerator": "gpu" if device.type == "cuda" else "cpu", "devices": 1,
               "precision": "bf16-mixed", "max_epochs": size["epochs"]}
    synchronize(device)
    start = time.perf_counter()
    result = run(stream, module, trainer=trainer, batch_size=size["batch"], seed=0,
                 data_on_device=True, echo=None)
    synchronize(device)
    return {"wall": time.perf_counter() - start,
            "train_seconds": sum(c.train_seconds for c in result.cost),
            "train_samples": sum(c.train_samples for c in result.cost),
            "accuracy": float(result.matrix[-1].mean())}


# --------------------------------------------------------------------------- the plain loop

def crop_flip(x: Tensor, pad: int = 4) -> Tensor:
    """Random crop with zero padding and horizontal flip, a draw per sample, on x's device."""
    b, _, h, w = x.shape
    windows = F.pad(x, (pad,) * 4).unfold(2, h, 1).unfold(3, w, 1)  # [B, C, 2p+1, 2p+1, h, w]
    top, left = (torch.randint(0, 2 * pad + 1, (b,), device=x.device) for _ in range(2))
    x = windows[torch.arange(b, device=x.device), :, top, left]
    flip = torch.rand(b, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


class Plain:
    """What a careful user would write: one class per strategy, hooks around the loop."""

    def __init__(self, device: torch.device, size: dict) -> None:
        self.device, self.size = device, size
        self.mean = torch.tensor(CIFAR_MEAN, device=device).view(3, 1, 1)
        self.std = torch.tensor(CIFAR_STD, device=device).view(3, 1, 1)

    def inputs(self, x: Tensor, train: bool = True) -> Tensor:
        x = x.float().div_(255).sub_(self.mean).div_(self.std)
        return crop_flip(x) if train else x

    def loss(self, net, x, y) -> Tensor:
        return F.cross_entropy(net(self.inputs(x)).float(), y)

    def after_step(self, net, x, y) -> None: ...

    def task_end(self, net, x, y, i) -> None: ...


class PlainEWC(Plain):
    def __init__(self, device, size) -> None:
        super().__init__(device, size)
        self.anchors: list[tuple[list[Tensor], list[Tensor]]] = []  # (θ*, F) per task

    def loss(self, net, x, y):
        loss = super().loss(net, x, y)
        for anchor, fisher in self.anchors:
            loss = loss + LAM * sum((f * (p - a) ** 2).sum()
                                    for p, a, f in zip(net.parameters(), anchor, fisher))
        return loss

    def task_end(self, net, x, y, i):
        g = torch.Generator().manual_seed(i)
        pick = torch.randperm(len(y), generator=g)[: self.size["ewc_samples"]].to(y.device)
        params = {n: p.detach() for n, p in net.named_parameters()}
        buffers = {n: b for n, b in net.named_buffers()}

        def nll(p, xi, yi):
            logits = functional_call(net, (p, buffers), (xi[None],))
            return F.cross_entropy(logits.float(), yi[None])

        net.eval()  # running statistics: per-sample gradients of independent samples
        fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        for chunk in pick.split(64):
            grads = vmap(grad(nll), in_dims=(None, 0, 0))(params, self.inputs(x[chunk], False),
                                                         y[chunk])
            for n in fisher:
                fisher[n] += grads[n].square().sum(0)
        net.train()
        self.anchors.append(([p.detach().clone() for p in net.parameters()],
                             [fisher[n] / len(pick) for n, _ in net.named_parameters()]))


class PlainDERpp(Plain):
    def __init__(self, device, size) -> None:
        super().__init__(device, size)
        self.seen, self.g = 0, torch.Generator().manual_seed(0)
        self.x = self.y = self.z = None
        self._logits = None

    def loss(self, net, x, y):
        logits = net(self.inputs(x))
        self._logits = logits.detach().float()
        loss = F.cross_entropy(logits.float(), y)
        if self.seen:
            n = min(self.seen, len(self.y))
            for term in ("logits", "labels"):
                idx = torch.randint(0, n, (len(y),), generator=self.g).to(self.device)
                out = net(self.inputs(self.x[idx])).float()
                loss = loss + (ALPHA * F.mse_loss(out, self.z[idx]) if term == "logits"
                               else BETA * F.cross_entropy(out, self.y[idx]))
        return loss

    def after_step(self, net, x, y):
        cap = self.size["buffer"]
        if self.x is None:
            self.x = torch.zeros((cap, *x.shape[1:]), dtype=x.dtype, device=self.device)
            self.y = torch.zeros(cap, dtype=torch.long, device=self.device)
            self.z = torch.zeros((cap, self._logits.shape[1]), device=self.device)
        seen = self.seen + torch.arange(len(y))
        slots = torch.where(seen < cap, seen, (torch.rand(len(y), generator=self.g) *
                                               (seen + 1)).long())
        keep = (slots < cap).to(self.device)
        slots = slots.to(self.device)
        self.x[slots[keep]], self.y[slots[keep]] = x[keep], y[keep]
        self.z[slots[keep]] = self._logits[keep]
        self.seen += len(y)


def plain(stream, name: str, size: dict, device: torch.device) -> dict:
    net = new_net(size["nf"], device)
    recipe = {"FineTune": Plain, "EWC": PlainEWC, "DER++": PlainDERpp}[name](device, size)
    tasks = [(t.train.x.to(device), t.train.y.to(device), t.test.x.to(device),
              t.test.y.to(device)) for t in stream]
    synchronize(device)
    start, train_seconds, samples, row = time.perf_counter(), 0.0, 0, []
    for i, (x, y, _, _) in enumerate(tasks):
        torch.manual_seed(i)
        optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
        synchronize(device)
        began = time.perf_counter()
        for _ in range(size["epochs"]):
            for idx in torch.randperm(len(y), device=device).split(size["batch"]):
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    loss = recipe.loss(net, x[idx], y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                recipe.after_step(net, x[idx], y[idx])
                samples += len(idx)
        synchronize(device)
        train_seconds += time.perf_counter() - began
        recipe.task_end(net, x, y, i)
        row = evaluate(net, recipe, tasks)
    synchronize(device)
    return {"wall": time.perf_counter() - start, "train_seconds": train_seconds,
            "train_samples": samples, "accuracy": sum(row) / len(row)}


def evaluate(net: nn.Module, recipe: Plain, tasks) -> list[float]:
    net.eval()
    row = []
    with torch.inference_mode(), torch.autocast(recipe.device.type, dtype=torch.bfloat16):
        for _, _, x, y in tasks:
            right = sum(int((net(recipe.inputs(xs, False)).argmax(-1) == ys).sum())
                        for xs, ys in zip(x.split(1024), y.split(1024)))
            row.append(right / len(y))
    net.train()
    return row


# ------------------------------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, on the CPU if no GPU")
    parser.add_argument("--epochs", type=int, help="epochs per task (default 1)")
    parser.add_argument("--out", type=Path, help="folder for the .md/.json (default: here)")
    args = parser.parse_args()
    size = dict(SMOKE if args.smoke else FULL)
    if args.epochs:
        size["epochs"] = args.epochs
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        parser.error("no CUDA GPU here: run with --smoke to check the script on the CPU")
    torch.backends.cudnn.benchmark = True
    data = synthetic_cifar(size["train_per_class"], size["test_per_class"])
    stream = augment(split_classes(data, n_tasks=5), _recipe())
    tiny = augment(split_classes(synthetic_cifar(4, 1, seed=1), n_tasks=5), _recipe())
    started = time.perf_counter()
    rows = {}
    for name in ("FineTune", "EWC", "DER++"):
        toolkit(tiny, name, {**size, "epochs": 1}, device)  # warm-up: CUDA, cuDNN, Lightning
        plain(tiny, name, {**size, "epochs": 1}, device)
        rows[name] = {"toolkit": toolkit(stream, name, size, device),
                      "plain": plain(stream, name, size, device)}
    record = {"machine": machine(device), "size": size, "smoke": args.smoke,
              "seconds": time.perf_counter() - started, "strategies": rows}
    out = args.out or HERE
    stem = "throughput_smoke" if args.smoke else "throughput"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    text = report(record)
    (out / f"{stem}.md").write_text(text)
    print(text)


def _recipe():
    from torchvision.transforms import v2

    return [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]


def machine(device: torch.device) -> dict:
    import lightning

    info = {"device": str(device), "platform": platform.platform(), "torch": torch.__version__,
            "lightning": lightning.__version__, "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return info


def report(r: dict) -> str:
    m, s = r["machine"], r["size"]
    rows = []
    for name, v in r["strategies"].items():
        t, p = v["toolkit"], v["plain"]
        tr, pr = t["train_samples"] / t["train_seconds"], p["train_samples"] / p["train_seconds"]
        tw, pw = t["train_samples"] / t["wall"], p["train_samples"] / p["wall"]
        rows.append(f"| {name} | {tr:,.0f} | {pr:,.0f} | {tr / pr:.2f} | {tw:,.0f} | {pw:,.0f} | "
                    f"{tw / pw:.2f} | {100 * t['accuracy']:.1f} / {100 * p['accuracy']:.1f} |")
    where = m.get("gpu", "CPU") + (f", CUDA {m['cuda']}" if "cuda" in m else "")
    title = "smoke run (tiny sizes, CPU)" if r["smoke"] else "one GPU"
    return "\n".join([
        f"# Split-CIFAR-shaped throughput, toolkit vs plain PyTorch: {title}\n",
        f"`python -m experiments.gpu.throughput{' --smoke' if r['smoke'] else ''}` on {where}; "
        f"torch {m['torch']}, Lightning {m['lightning']}; {r['seconds']:.0f} s in all.\n",
        f"Synthetic uint8 3×32×32, 10 classes, 5 tasks, {s['train_per_class']:,} training "
        f"images per class, held on the device; reduced ResNet-18 (nf={s['nf']}) in "
        f"channels_last, bf16 autocast, batch {s['batch']}, {s['epochs']} epoch(s) per task, "
        "crop + flip per sample on the device (new and replayed samples).\n",
        "| strategy | toolkit train samples/s | plain | ratio | toolkit whole run samples/s "
        "| plain | ratio | final accuracy % (toolkit / plain) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |", *rows, ""])


if __name__ == "__main__":
    main()
