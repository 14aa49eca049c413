"""Fine-tuning: train on each new task's data only, carrying the weights over."""

from continual.strategies.base import Strategy


class FineTune(Strategy):
    """The incremental baseline: cheapest per task, and it forgets (the lower bound)."""
