"""Progressive Neural Networks (Rusu et al. 2016): a new column per task, lateral connections
from the frozen columns of earlier tasks."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from continual.data.stream import Stream
from continual.errors import ConfigError
from continual.strategies.base import Strategy

PARAMETER_FREE = (nn.Flatten, nn.Dropout, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU,
                  nn.SiLU, nn.Tanh, nn.Sigmoid)
Column = list[tuple[Tensor, Tensor | None]]  # (weight, bias) of each linear layer


def mlp_layers(net: nn.Module) -> list[nn.Module]:
    """The net's leaf modules in order, when they are linear layers and parameter-free
    elementwise ones (what a column is made of); ConfigError otherwise."""
    leaves = [m for m in net.modules() if not list(m.children())]
    bad = [type(m).__name__ for m in leaves if not isinstance(m, (nn.Linear, *PARAMETER_FREE))]
    if bad or not any(isinstance(m, nn.Linear) for m in leaves):
        raise ConfigError(f"PNN on model.net={type(net).__name__} (holding {bad[:1] or 'no'} "
                          "layers) is invalid; allowed: an MLP of nn.Linear, nn.Flatten, "
                          "nn.Dropout and activations applied in order")
    return leaves


def progressive_forward(layers: list[nn.Module], columns: list[Column],
                        laterals: list[list[Tensor | None]], x: Tensor) -> Tensor:
    """The last column's output: column ``k``'s linear layer ``i > 0`` adds ``U_i^k`` ``[out,
    k·in]`` times the inputs of layer ``i`` in columns ``0..k-1``, concatenated."""
    seen: list[list[Tensor]] = []  # seen[j][i]: the input of column j's linear layer i
    for k, (weights, lateral) in enumerate(zip(columns, laterals)):
        h, inputs = x.to(weights[0][0].dtype), []
        for layer in layers:
            if not isinstance(layer, nn.Linear):
                h = layer(h)
                continue
            i = len(inputs)
            inputs.append(h)
            out = F.linear(h, *weights[i])
            h = out + torch.cat([s[i] for s in seen], 1) @ lateral[i].T if k and i else out
        seen.append(inputs)
    return h


class PNN(Strategy):
    """Task ``k`` trains a fresh column (the net's linear layers re-initialised, seeded by
    ``seed + k``; task 0 keeps the net's own weights) with lateral connections from the hidden
    activations of columns ``< k``; at its end the column and its laterals are frozen, and task
    ``k`` is always evaluated through column ``k``. Earlier columns never change: zero
    forgetting in task-incremental streams, at a cost that grows with the number of tasks.

    Defined for MLP-style nets (:func:`mlp_layers`). The loss is the cross-entropy of the
    progressive forward (it replaces the net's own). Laterals are plain linear maps, started at
    zero (a new column starts as an independent net), where the paper uses non-linear adapters
    and random initialisation; they are trained by their own ``optimizer`` from the module's
    factory, stepped with the module's. Single-process (the laterals' gradients are not reduced
    across DDP ranks) and without fp16 gradient scaling (bf16 or fp32 are fine).

    Args:
        seed: seeds the re-initialisation of each new column.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._columns: list[Column] = []  # frozen, one per finished task
        self._laterals: list[list[Tensor | None]] = []  # their laterals
        self._lateral: list[Tensor | None] = []  # the training column's laterals
        self._optimizer: torch.optim.Optimizer | None = None
        self._pending: dict[str, Any] | None = None  # optimizer state to load when rebuilt
        self._task = 0

    def on_task_start(self, module, stream: Stream, index: int) -> None:
        if stream.scenario != "task":
            raise ConfigError(f"PNN on scenario={stream.scenario!r} is invalid; allowed: "
                              "'task' (it picks a column by the task identity)")
        layers = mlp_layers(module.net)
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        self._check_in_order(module, layers, torch.rand(
            2, *stream.input_shape, generator=torch.Generator().manual_seed(0)))
        self._task, self._optimizer, self._pending = index, None, None
        if index:
            devices = [module.device] if module.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed + index)
                for linear in linears:
                    linear.reset_parameters()
        self._lateral = [None if not (index and i) else torch.zeros(
            m.out_features, index * m.in_features, device=module.device, requires_grad=True)
            for i, m in enumerate(linears)]

    @torch.no_grad()
    def _check_in_order(self, module, layers: list[nn.Module], x: Tensor) -> None:
        x = module.training_inputs(x.to(module.device), augment=False)
        was_training = module.net.training
        module.net.eval()
        try:
            same = torch.allclose(module.net(x), self._forward(module, layers, x, 0, live=True))
        finally:
            module.net.train(was_training)
        if not same:
            raise ConfigError(f"PNN on model.net={type(module.net).__name__} is invalid: its "
                              "forward is not its layers in order; allowed: an MLP")

    def _forward(self, module, layers: list[nn.Module], x: Tensor, column: int, live: bool
                 ) -> Tensor:
        """Column ``column``'s output; ``live``: that column is the net in training."""
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        now: Column = [(m.weight, m.bias) for m in linears]
        columns = self._columns[:column] + [now] if live else self._columns[:column + 1]
        laterals = self._laterals[:column] + [self._lateral] if live else \
            self._laterals[:column + 1]
        return progressive_forward(layers, columns, laterals, x)

    def loss(self, module, step, loss):
        self._ready(module)
        out = self._forward(module, mlp_layers(module.net), step.inputs, self._task, live=True)
        return F.cross_entropy(module.masked(out, step.t), step.y)

    def _ready(self, module) -> None:
        """Laterals on the module's device, their optimizer built (again, after a resume)."""
        if self._optimizer is not None or not any(u is not None for u in self._lateral):
            return
        self._lateral = [None if u is None else u.detach().to(module.device).requires_grad_()
                         for u in self._lateral]
        self._optimizer = module.optimizer_factory([u for u in self._lateral if u is not None])
        if self._pending is not None:
            self._optimizer.load_state_dict(self._pending)
            self._pending = None

    def on_before_optimizer_step(self, module) -> None:
        if self._optimizer is not None:
            self._optimizer.step()
            self._optimizer.zero_grad()

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        linears = [m for m in mlp_layers(module.net) if isinstance(m, nn.Linear)]
        self._columns.append([(m.weight.detach().clone(), None if m.bias is None else
                               m.bias.detach().clone()) for m in linears])
        self._laterals.append([None if u is None else u.detach().clone() for u in self._lateral])
        self._optimizer = self._pending = None

    def predict(self, module, x, t, logits):
        if t is None:
            return logits
        live = len(self._columns) == self._task  # the column in training is not frozen yet
        layers, out = mlp_layers(module.net), logits.clone()
        x = module.training_inputs(x, augment=False)
        for task in torch.unique(t).tolist():  # each task through its own column
            rows = t == task
            column = min(task, len(self._columns) - (0 if live else 1))
            is_live = live and column == len(self._columns)
            out[rows] = self._forward(module, layers, x[rows], column, is_live).to(out.dtype)
        return out

    def state_dict(self) -> dict[str, Any]:
        optimizer = self._optimizer.state_dict() if self._optimizer is not None else \
            self._pending
        return {"task": self._task, "columns": [[list(wb) for wb in c] for c in self._columns],
                "laterals": self._laterals, "optimizer": optimizer,
                "lateral": [None if u is None else u.detach() for u in self._lateral]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._task = int(state["task"])
        self._columns = [[tuple(wb) for wb in c] for c in state["columns"]]
        self._laterals = [list(ls) for ls in state["laterals"]]
        self._lateral = list(state["lateral"])
        self._optimizer, self._pending = None, state["optimizer"]
