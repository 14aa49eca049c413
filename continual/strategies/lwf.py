"""Learning without Forgetting (Li & Hoiem 2016)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from continual.data.stream import Stream
from continual.errors import ConfigError
from continual.strategies.base import Strategy
from continual.strategies.snapshot import Snapshot


def distillation_loss(logits: Tensor, old_logits: Tensor, classes: Tensor, temperature: float
                      ) -> Tensor:
    """``T² · KL(softmax(old/T) ‖ softmax(new/T))`` over ``classes``, averaged over the batch.

    The ``T²`` factor keeps gradient magnitudes independent of the temperature (Hinton et al.).
    """
    new = F.log_softmax(logits[:, classes] / temperature, -1)
    old = F.log_softmax(old_logits[:, classes] / temperature, -1)
    return F.kl_div(new, old, log_target=True, reduction="batchmean") * temperature**2


class LwF(Strategy):
    """Fine-tune while keeping the previous model's outputs on the new data.

    Old outputs are distilled over the classes seen so far: in one softmax for class- and
    domain-incremental streams, head by head (one softmax per earlier task) for
    task-incremental ones, as in the paper.

    Args:
        alpha: weight of the distillation term.
        temperature: softmax temperature T of the distillation.
    """

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0) -> None:
        if temperature <= 0:
            raise ConfigError(f"temperature={temperature} is invalid; allowed: > 0")
        self.alpha, self.temperature = alpha, temperature
        self._teacher = Snapshot()
        self._heads: list[list[int]] = []

    def on_task_end(self, module, stream: Stream, index: int) -> None:
        self._teacher.take(module.net)
        tasks = stream.tasks[: index + 1]
        if stream.scenario == "task":
            self._heads = [list(task.classes) for task in tasks]
        else:
            self._heads = [sorted({c for task in tasks for c in task.classes})]

    def loss(self, module, step, loss):
        if not self._teacher.taken:
            return loss
        with torch.no_grad():
            old_logits = self._teacher.net(module.net)(step.inputs)
        terms = [
            distillation_loss(step.raw_logits, old_logits,
                              torch.tensor(head, device=step.logits.device), self.temperature)
            for head in self._heads
        ]
        return loss + self.alpha * torch.stack(terms).mean()

    def state_dict(self) -> dict[str, Any]:
        return {"old_state": self._teacher.weights, "heads": self._heads}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._teacher.load(state["old_state"])
        self._heads = state["heads"]
