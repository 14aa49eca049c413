"""The network's penultimate features, for methods that classify or select in feature space
(iCaRL's nearest mean of exemplars and herding, nearest-class-mean classifiers)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from continual.errors import ConfigError


def last_linear(net: nn.Module) -> nn.Linear:
    """The network's last ``nn.Linear`` (in registration order): its classification head."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"{type(net).__name__} has no nn.Linear head; allowed: a net whose "
                          "last nn.Linear maps features to the class logits")
    return linears[-1]


@torch.no_grad()
def penultimate(net: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """What the head receives for inputs ``x``: features ``[N, D]``, with the net in eval mode.

    Read by a temporary forward pre-hook on :func:`last_linear`, so any net whose head is its
    last linear layer works unchanged (MLP, ConvNet, ResNet18, a user's own).
    """
    return penultimate_and_logits(net, x, batch_size)[0]


@torch.no_grad()
def penultimate_and_logits(net: nn.Module, x: Tensor, batch_size: int = 1024
                           ) -> tuple[Tensor, Tensor]:
    """:func:`penultimate`'s features ``[N, D]`` and the net's outputs ``[N, C]``, from the
    same forward passes (eval mode)."""
    captured: list[Tensor] = []
    outputs: list[Tensor] = []
    head = last_linear(net)
    handle = head.register_forward_pre_hook(lambda _, args: captured.append(args[0].flatten(1)))
    was_training = net.training
    net.eval()
    try:
        for start in range(0, len(x), batch_size):
            outputs.append(net(x[start:start + batch_size]))
    finally:
        handle.remove()
        net.train(was_training)
    if not captured:
        return x.new_zeros((0, head.in_features)), x.new_zeros((0, head.out_features))
    return torch.cat(captured), torch.cat(outputs)


def scores_as_logits(scores: Tensor, logits: Tensor) -> Tensor:
    """Per-class ``scores`` ``[B, K]`` (classes seen so far) in place of ``logits`` ``[B, C]``:
    the classes not yet seen get the lowest value, so argmax never picks them."""
    return F.pad(scores, (0, logits.shape[1] - scores.shape[1]),
                 value=torch.finfo(scores.dtype).min).to(logits.dtype)
