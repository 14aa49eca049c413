"""Retraining strategies, one file per method."""

from continual.strategies.base import Strategy
from continual.strategies.finetune import FineTune
from continual.strategies.full_retrain import FullRetrain
from continual.strategies.joint import Joint

__all__ = ["FineTune", "FullRetrain", "Joint", "Strategy"]
