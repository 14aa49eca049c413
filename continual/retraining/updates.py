"""How to retrain: which data a retrain uses, and whether it starts from scratch.

Every update trains a copy of the serving model (the challenger) through the same
:class:`~continual.module.ContinualModule` and strategy hooks as a continual-learning run,
so EWC and replay updates are exactly the strategies of :mod:`continual.strategies`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.strategies.base import Strategy
from continual.strategies.finetune import FineTune


@dataclass
class StoredChunk:
    """A labelled chunk after the quality gate, split into a training and a held-out part."""

    step: int
    train: TensorData
    holdout: TensorData


@dataclass
class Plan:
    """What one retrain trains on: data, optional sampling weights, and a fresh start or not."""

    data: TensorData
    weights: Tensor | None
    from_scratch: bool


class Update:
    """Base class. ``since`` indexes the first stored chunk the serving model never learned."""

    def strategy(self) -> Strategy:
        """The strategy the module trains under (its hooks run on every retrain)."""
        return FineTune()

    def plan(self, history: list[StoredChunk], since: int) -> Plan:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Incremental(Update):
    """Continue training the serving model on the chunks it has not learned yet.

    With the default :class:`FineTune` this is plain fine-tuning on new data; pass
    ``EWC(...)`` or ``ExperienceReplay(...)`` for an incremental update that protects what the
    model knew (the strategy's state carries from retrain to retrain).
    """

    def __init__(self, strategy: Strategy | None = None) -> None:
        self._strategy = strategy if strategy is not None else FineTune()

    def strategy(self) -> Strategy:
        return self._strategy

    def plan(self, history: list[StoredChunk], since: int) -> Plan:
        return Plan(_concat(history[since:]), None, from_scratch=False)

    def __repr__(self) -> str:
        return f"Incremental({self._strategy!r})"


class FullHistory(Update):
    """Retrain from scratch on everything stored: remembers all, cost grows with the stream."""

    def plan(self, history: list[StoredChunk], since: int) -> Plan:
        return Plan(_concat(history), None, from_scratch=True)


class SlidingWindow(Update):
    """Retrain from scratch on the last ``chunks`` stored chunks: old concepts age out."""

    def __init__(self, chunks: int = 5) -> None:
        if chunks < 1:
            raise ConfigError(f"chunks={chunks} is invalid; allowed: 1 or more")
        self.chunks = chunks

    def plan(self, history: list[StoredChunk], since: int) -> Plan:
        return Plan(_concat(history[-self.chunks:]), None, from_scratch=True)


class RecencyWeighted(Update):
    """Retrain from scratch on everything, older samples drawn less often.

    A sample ``a`` chunks older than the newest has weight ``decay**a``; an epoch draws as many
    samples as are stored, with replacement and probability proportional to weight (the same
    compute as a full-history epoch, and in expectation the same gradient as a weighted loss).

    Args:
        decay: weight ratio between consecutive chunks, in (0, 1].
    """

    def __init__(self, decay: float = 0.7) -> None:
        if not 0 < decay <= 1:
            raise ConfigError(f"decay={decay} is invalid; allowed: 0 < decay <= 1")
        self.decay = decay

    def plan(self, history: list[StoredChunk], since: int) -> Plan:
        newest = history[-1].step
        weights = torch.cat([torch.full((len(c.train),), self.decay ** (newest - c.step),
                                        dtype=torch.float64) for c in history])
        return Plan(_concat(history), weights, from_scratch=True)


def _concat(chunks: list[StoredChunk]) -> TensorData:
    parts = [c.train for c in chunks if len(c.train)]
    if not parts:
        return chunks[-1].train if chunks else TensorData(torch.zeros(0), torch.zeros(0))
    return TensorData.concat(parts)
