"""A retraining policy: when (trigger), how (update), and whether to deploy (gate), with caps."""

from __future__ import annotations

from dataclasses import dataclass

from continual.errors import ConfigError
from continual.retraining.gate import DeployGate
from continual.retraining.quality import QualityGate
from continual.retraining.triggers import Never, Trigger
from continual.retraining.updates import Incremental, Update


@dataclass
class Policy:
    """Everything that decides what happens to the serving model as chunks arrive.

    A dataclass, so a YAML list of policies reads as plain mappings (``name: …, trigger: …``).

    Args:
        name: the policy's row in the results table.
        trigger: when to retrain (default: never).
        update: how to retrain (default: fine-tune on the data the model has not learned).
        deploy_gate: champion/challenger gate; ``None`` deploys every retrained model.
        quality_gate: drops bad samples before storage; ``None`` trusts the data.
        max_retrains: cap on the number of retrains; further triggers are skipped.
        max_train_seconds: compute budget; no retrain starts once it is spent.
        max_train_samples: budget in training samples, likewise.
    """

    name: str
    trigger: Trigger | None = None
    update: Update | None = None
    deploy_gate: DeployGate | None = None
    quality_gate: QualityGate | None = None
    max_retrains: int | None = None
    max_train_seconds: float | None = None
    max_train_samples: int | None = None

    def __post_init__(self) -> None:
        # None defaults (not default factories) keep the dumped config plain data.
        self.trigger = self.trigger if self.trigger is not None else Never()
        self.update = self.update if self.update is not None else Incremental()
        if not self.name:
            raise ConfigError("name='' is invalid; allowed: a non-empty policy name")
        for cap in ("max_retrains", "max_train_seconds", "max_train_samples"):
            value = getattr(self, cap)
            if value is not None and value < 0:
                raise ConfigError(f"{cap}={value} is invalid; allowed: 0 or more, or null")

    def over_budget(self, retrains: int, seconds: float, samples: int) -> str | None:
        """Which cap stops the next retrain, if any."""
        if self.max_retrains is not None and retrains >= self.max_retrains:
            return f"max_retrains={self.max_retrains} reached"
        if self.max_train_seconds is not None and seconds >= self.max_train_seconds:
            return f"max_train_seconds={self.max_train_seconds} spent"
        if self.max_train_samples is not None and samples >= self.max_train_samples:
            return f"max_train_samples={self.max_train_samples} spent"
        return None
