"""The baseline: each strategy as a hand-written PyTorch loop, no Lightning, no toolkit code.

What a careful user would write for the same computation as the toolkit's run: the same
network and initial weights, Adam(1e-3) created afresh per task, the same batch size, the same
shuffled order (task ``i``, epoch ``e``: a permutation from a generator seeded
``(seed * 100_003 + i) * 1_000_003 + e``, as the runner's sampler draws it), batches by index
slicing, and the same extra work per strategy. EWC: the true Fisher on the same 512 samples,
by the same linear-layer shortcut (``Σ_i p_ic δ_i² a_i²ᵀ``, one matrix product per layer and
class), and the merged quadratic's gradient ``2λA(θ − m)`` added before the step. ER: a
reservoir memory of 200 (Vitter's) and a replay batch as large as the new one, in its own
forward pass as the toolkit does. And so on for each recipe below. Nothing else: no NaN
check, no logging. Only ``continual.data`` is used, to read the same stream.

Each recipe is a small class with a loss and optional hooks; :func:`plain_run` is the loop.
The benchmarks import it as ``from experiments.benchmarks import plain`` (run them from the
repository root, e.g. ``python -m experiments.benchmarks.speed``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Clock = Callable[[], tuple[float, float]]  # (wall seconds, process CPU seconds)


def floats(stream):
    """The stream with every input decoded to the floats the network sees, once (images are
    stored as uint8 and the toolkit decodes each batch; the plain loop starts from floats)."""
    def decode(task) -> None:
        task.train, task.val, task.test = (p.decoded() for p in (task.train, task.val, task.test))
    return stream.map_tasks(decode)


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class Recipe:
    """Fine-tuning; subclasses add what their strategy adds."""

    def data(self, stream, i: int) -> tuple[Tensor, Tensor]:
        return stream[i].train.x, stream[i].train.y

    def task_start(self, net: nn.Module, stream, i: int) -> None: ...

    def loss(self, net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(net(x), y)

    def before_step(self, net: nn.Module) -> None: ...

    def after_step(self, net: nn.Module) -> None: ...

    def task_end(self, net: nn.Module, stream, i: int) -> None: ...


class FullRetrain(Recipe):
    def __init__(self, from_scratch: bool = True) -> None:
        self.from_scratch, self.initial = from_scratch, None

    def data(self, stream, i):
        return (torch.cat([stream[k].train.x for k in range(i + 1)]),
                torch.cat([stream[k].train.y for k in range(i + 1)]))

    def task_start(self, net, stream, i):
        if self.initial is None:
            self.initial = copy.deepcopy(net.state_dict())
        elif self.from_scratch:
            net.load_state_dict(self.initial)


# ---- quadratic regularisers: one merged quadratic A (θ − m)², its gradient added by hand ----

class Quadratic(Recipe):
    def __init__(self, lam: float, merge: bool, decay: float = 1.0) -> None:
        self.lam, self.merge, self.decay = lam, merge, decay
        self.penalties: list[tuple[dict, dict]] = []  # (anchor, importance) per task
        self.centre: list[Tensor] = []
        self.weight: list[Tensor] = []

    def consolidate(self, net, importance: dict) -> None:
        anchor = {n: p.detach().clone() for n, p in net.named_parameters()}
        if self.merge and self.penalties:
            old = self.penalties[0][1]
            self.penalties = [(anchor, {n: self.decay * old[n] + importance[n] for n in old})]
        else:
            self.penalties.append((anchor, importance))
        self.centre, self.weight = [], []
        for n, _ in net.named_parameters():
            a = sum(imp[n] for _, imp in self.penalties)
            b = sum(imp[n] * anc[n] for anc, imp in self.penalties)
            self.weight.append(a)
            self.centre.append(torch.where(a > 0, b / a.clamp_min(1e-30), 0.0))

    def before_step(self, net):
        if self.penalties:
            params = [p.detach() for p in net.parameters()]
            pull = torch._foreach_sub(params, self.centre)  # θ − m
            torch._foreach_addcmul_([p.grad for p in net.parameters()], self.weight, pull,
                                    value=2.0 * self.lam)  # g += 2λ A (θ − m)


def subsample(x: Tensor, n: int, seed: int) -> Tensor:
    if n >= len(x):
        return x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


def linear_sums(net: nn.Module, x: Tensor, objectives, phi) -> list[Tensor]:
    """``Σ_i w_i φ(∂f_i/∂θ)`` for the MLP's linear layers: sample i's weight gradient is
    ``δ_i a_iᵀ``, so ``Σ_i w_i φ(δ_i) φ(a_i)ᵀ`` is one matrix product per layer."""
    inputs, outputs, h = [], [], x.flatten(1)
    for layer in net.layers[1:]:  # after the Flatten
        if isinstance(layer, nn.Linear):
            inputs.append(h)
            h = layer(h)
            outputs.append(h)
        else:
            h = layer(h)
    sums = [torch.zeros_like(p) for p in net.parameters()]  # weight, bias per layer
    for values, w in objectives(h):
        deltas = torch.autograd.grad(values.sum(), outputs, retain_graph=True)
        for k, (a, d) in enumerate(zip(inputs, deltas)):
            wd = phi(d) * w[:, None]
            sums[2 * k] += wd.T @ phi(a.detach())
            sums[2 * k + 1] += wd.sum(0)
    return sums


def true_fisher(net: nn.Module, x: Tensor, batch_size: int = 64) -> dict[str, Tensor]:
    """``1/N Σ_i Σ_c p(c|x_i) (∂ log p(c|x_i)/∂θ)²``."""
    def per_class(logits):
        log_p = logits.log_softmax(-1)
        probs = log_p.detach().exp()
        for c in range(probs.shape[1]):
            yield log_p[:, c], probs[:, c]

    fisher = [torch.zeros_like(p) for p in net.parameters()]
    for s in range(0, len(x), batch_size):
        for f, part in zip(fisher, linear_sums(net, x[s:s + batch_size], per_class, torch.square)):
            f += part
    return {n: f / len(x) for (n, _), f in zip(net.named_parameters(), fisher)}


class EWC(Quadratic):
    def __init__(self, lam: float = 30.0, n_samples: int = 512, merge: bool = False,
                 gamma: float = 1.0) -> None:
        super().__init__(lam, merge, gamma)
        self.n_samples = n_samples

    def task_end(self, net, stream, i):
        self.consolidate(net, true_fisher(net, subsample(stream[i].train.x, self.n_samples, i)))


class SI(Quadratic):
    def __init__(self, lam: float = 10.0, xi: float = 0.1) -> None:
        super().__init__(lam, merge=True)
        self.xi = xi

    def task_start(self, net, stream, i):
        self.start = [p.detach().clone() for p in net.parameters()]
        self.omega = [torch.zeros_like(p) for p in net.parameters()]

    def before_step(self, net):
        super().before_step(net)
        self.grads = [p.grad for p in net.parameters()]
        self.before = torch._foreach_mul([p.detach() for p in net.parameters()], 1.0)

    def after_step(self, net):
        delta = torch._foreach_sub([p.detach() for p in net.parameters()], self.before)
        torch._foreach_addcmul_(self.omega, self.grads, delta, value=-1.0)

    def task_end(self, net, stream, i):
        names = [n for n, _ in net.named_parameters()]
        end = [p.detach() for p in net.parameters()]
        self.consolidate(net, {n: (w / ((e - s) ** 2 + self.xi)).clamp_min(0.0)
                               for n, w, e, s in zip(names, self.omega, end, self.start)})


class MAS(Quadratic):
    def __init__(self, lam: float = 0.1, n_samples: int = 512) -> None:
        super().__init__(lam, merge=True)
        self.n_samples = n_samples

    def task_end(self, net, stream, i):
        x = subsample(stream[i].train.x, self.n_samples, i)

        def norm(logits):
            yield (logits**2).sum(-1), torch.ones(len(logits))

        omega = [torch.zeros_like(p) for p in net.parameters()]
        for s in range(0, len(x), 64):
            for o, part in zip(omega, linear_sums(net, x[s:s + 64], norm, torch.abs)):
                o += part
        self.consolidate(net, {n: o / len(x) for (n, _), o in zip(net.named_parameters(), omega)})


class LwF(Recipe):
    def __init__(self, alpha: float = 1.0, temperature: float = 2.0) -> None:
        self.alpha, self.T, self.old, self.seen = alpha, temperature, None, []

    def loss(self, net, x, y):
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        if self.old is not None:
            with torch.no_grad():
                old = self.old(x)
            cls = self.seen
            kl = F.kl_div(F.log_softmax(logits[:, cls] / self.T, -1),
                          F.log_softmax(old[:, cls] / self.T, -1), log_target=True,
                          reduction="batchmean")
            loss = loss + self.alpha * kl * self.T**2
        return loss

    def task_end(self, net, stream, i):
        self.old = copy.deepcopy(net).requires_grad_(False).eval()
        self.seen = torch.tensor(sorted({c for t in stream.tasks[: i + 1] for c in t.classes}))


# ---- replay: a reservoir memory (Vitter), preallocated ----

class Reservoir:
    def __init__(self, capacity: int, seed: int = 0) -> None:
        self.capacity, self.n_seen, self.size = capacity, 0, 0
        self.g = torch.Generator().manual_seed(seed)
        self.store: list[Tensor] = []

    def add(self, *items: Tensor) -> None:
        if not self.store:
            self.store = [torch.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype) for v in items]
        seen = self.n_seen + torch.arange(len(items[0]))
        draw = (torch.rand(len(seen), generator=self.g) * (seen + 1)).long()
        slots = torch.where(seen < self.capacity, seen, draw)  # item j kept w.p. cap / (n + j + 1)
        keep = slots < self.capacity
        for store, v in zip(self.store, items):
            store[slots[keep]] = v[keep].detach()
        self.n_seen += len(seen)
        self.size = min(self.capacity, self.n_seen)

    def sample(self, n: int) -> list[Tensor]:
        idx = torch.randperm(self.size, generator=self.g)[:n]
        return [v[idx] for v in self.store]


class ER(Recipe):
    def __init__(self, buffer_size: int = 200) -> None:
        self.memory = Reservoir(buffer_size)

    def loss(self, net, x, y):
        return self.replayed(net, x, y, F.cross_entropy(net(x), y))

    def replayed(self, net, x, y, loss):
        """``loss`` plus the replay batch's, then the new batch offered to the memory."""
        if self.memory.size:
            bx, by = self.memory.sample(len(y))
            loss = loss + F.cross_entropy(net(bx), by)
        self.memory.add(x, y)
        return loss


class ERACE(ER):
    def loss(self, net, x, y):
        logits = net(x)
        present = torch.zeros(logits.shape[-1], dtype=torch.bool)
        present[y] = True
        loss = F.cross_entropy(logits.masked_fill(~present, torch.finfo(logits.dtype).min), y)
        return self.replayed(net, x, y, loss)


class DER(Recipe):
    def __init__(self, alpha: float = 0.3, beta: float = 0.0, buffer_size: int = 200) -> None:
        self.alpha, self.beta, self.memory = alpha, beta, Reservoir(buffer_size)

    def loss(self, net, x, y):
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        if self.memory.size:
            bx, _, bz = self.memory.sample(len(y))
            loss = loss + self.alpha * F.mse_loss(net(bx), bz)
            if self.beta:
                bx, by, _ = self.memory.sample(len(y))
                loss = loss + self.beta * F.cross_entropy(net(bx), by)
        self.memory.add(x, y, logits)
        return loss


class AGEM(Recipe):
    """Memory filled at each task's end (equal share per task), reference gradient on 64."""

    def __init__(self, buffer_size: int = 200, ref_size: int = 64) -> None:
        self.capacity, self.ref_size, self.parts = buffer_size, ref_size, []
        self.g = torch.Generator().manual_seed(0)
        self.mx = self.my = None

    def task_end(self, net, stream, i):
        self.parts.append((stream[i].train.x, stream[i].train.y))
        share = self.capacity // len(self.parts)
        keep = [torch.randperm(len(x), generator=self.g)[:share] for x, _ in self.parts]
        self.parts = [(x[k], y[k]) for (x, y), k in zip(self.parts, keep)]
        self.mx = torch.cat([x for x, _ in self.parts])
        self.my = torch.cat([y for _, y in self.parts])

    def before_step(self, net):
        if self.mx is None:
            return
        idx = torch.randperm(len(self.my), generator=self.g)[: self.ref_size]
        params = list(net.parameters())
        ref = torch.autograd.grad(F.cross_entropy(net(self.mx[idx]), self.my[idx]), params)
        g = torch.cat([p.grad.flatten() for p in params])
        r = torch.cat([v.flatten() for v in ref])
        dot = torch.dot(g, r)
        if dot < 0:
            g = g - dot / torch.dot(r, r).clamp_min(1e-12) * r
            offset = 0
            for p in params:
                p.grad.copy_(g[offset:offset + p.numel()].view_as(p))
                offset += p.numel()


class GDumb(Recipe):
    """Class-balanced memory; the network reset to its initial weights and trained on it."""

    def __init__(self, buffer_size: int = 200) -> None:
        self.capacity, self.initial = buffer_size, None
        self.g = torch.Generator().manual_seed(0)
        self.x = self.y = None

    def task_start(self, net, stream, i):
        if self.initial is None:
            self.initial = copy.deepcopy(net.state_dict())
        x, y = stream[i].train.x, stream[i].train.y
        if self.x is not None:
            x, y = torch.cat([self.x, x]), torch.cat([self.y, y])
        classes = y.unique()
        share = self.capacity // len(classes)
        keep = [torch.nonzero(y == c).flatten() for c in classes]
        keep = torch.cat([k[torch.randperm(len(k), generator=self.g)[:share]] for k in keep])
        self.x, self.y = x[keep], y[keep]
        net.load_state_dict(self.initial)

    def data(self, stream, i):
        return self.x, self.y


RECIPES: dict[str, Callable[[], Recipe]] = {
    "FineTune": Recipe, "FullRetrain": FullRetrain,
    "FullRetrain(warm)": lambda: FullRetrain(from_scratch=False),
    "EWC": lambda: EWC(30.0), "OnlineEWC": lambda: EWC(30.0, merge=True, gamma=0.9),
    "SI": lambda: SI(10.0, 0.1), "MAS": lambda: MAS(0.1), "LwF": lambda: LwF(1.0, 2.0),
    "ER": lambda: ER(200), "A-GEM": lambda: AGEM(200, 64), "DER": lambda: DER(0.3),
    "DER++": lambda: DER(0.1, 0.5), "ER-ACE": lambda: ERACE(200), "GDumb": lambda: GDumb(200),
}


def evaluate(net: nn.Module, stream, batch_size: int = 1024) -> list[float]:
    net.eval()
    row = []
    with torch.inference_mode():
        for task in stream:
            x, y = task.test.x, task.test.y
            right = sum(int((net(x[s:s + batch_size]).argmax(-1) == y[s:s + batch_size]).sum())
                        for s in range(0, len(y), batch_size))
            row.append(right / len(y))
    net.train()
    return row


def plain_run(stream, net: nn.Module, recipe: Recipe, epochs: int, batch_size: int,
              seed: int = 0, tasks: int | None = None) -> list[dict]:
    """Train task after task; per task the wall and CPU seconds of each phase."""
    costs = []
    for i in range(len(stream) if tasks is None else tasks):
        t0 = clock()
        recipe.task_start(net, stream, i)
        x, y = recipe.data(stream, i)
        t1 = clock()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        task_seed, n = seed * 100_003 + i, len(y)
        for epoch in range(epochs):
            # The toolkit's order: one permutation per (seed, task, epoch).
            generator = torch.Generator().manual_seed((task_seed * 1_000_003 + epoch) % 2**63)
            order = torch.randperm(n, generator=generator)
            for s in range(0, n, batch_size):
                idx = order[s:s + batch_size]
                loss = recipe.loss(net, x[idx], y[idx])
                optimizer.zero_grad()
                loss.backward()
                recipe.before_step(net)
                optimizer.step()
                recipe.after_step(net)
        t2 = clock()
        recipe.task_end(net, stream, i)
        t3 = clock()
        row = evaluate(net, stream)
        t4 = clock()
        costs.append({"train": t2[0] - t1[0], "train_cpu": t2[1] - t1[1],
                      "strategy": (t1[0] - t0[0]) + (t3[0] - t2[0]), "eval": t4[0] - t3[0],
                      "samples": n * epochs, "row": row})
    return costs
