"""The network as a task left it, frozen: the teacher of distillation methods.

LwF, iCaRL, BiC and LUCIR all distil from the model of the previous task. The snapshot is held
as its weights (what a checkpoint saves, in tensors); the frozen copy is built from them at its
first use, so a resumed run rebuilds the teacher instead of pickling a module.
"""

from __future__ import annotations

import copy

from torch import Tensor, nn


class Snapshot:
    """A frozen copy of a network's weights at one moment, and the module built from them."""

    def __init__(self) -> None:
        self.weights: dict[str, Tensor] | None = None
        self._net: nn.Module | None = None

    @property
    def taken(self) -> bool:
        """Whether a snapshot exists (not before the first task has ended)."""
        return self.weights is not None

    def take(self, net: nn.Module) -> None:
        """Keep ``net``'s current weights (copies: later training does not move them)."""
        self.weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self._net = None

    def net(self, like: nn.Module) -> nn.Module:
        """The frozen network in eval mode: ``like``'s architecture with the kept weights."""
        if self._net is None:
            self._net = copy.deepcopy(like).requires_grad_(False).eval()
            self._net.load_state_dict(self.weights)
        return self._net

    def load(self, weights: dict[str, Tensor] | None) -> None:
        """Restore kept weights (from a strategy's state dict); the module is rebuilt lazily."""
        self.weights, self._net = weights, None
