"""Whether to deploy: a champion/challenger comparison on held-out data."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import Tensor

from continual.errors import ConfigError


def negative_flip_rate(champion_correct: Tensor, challenger_correct: Tensor) -> float:
    """Share of samples the champion got right and the challenger gets wrong."""
    if len(champion_correct) == 0:
        return 0.0
    return float((champion_correct & ~challenger_correct).double().mean())


@dataclass
class Decision:
    """One champion/challenger comparison, with the numbers it rested on."""

    step: int
    deploy: bool
    reason: str
    champion_accuracy: float
    challenger_accuracy: float
    negative_flip_rate: float
    n_holdout: int  # samples compared: held-out ones, or live ones for a shadow verdict
    stage: str = "holdout"  # "holdout": the gate on held-out data; "shadow": on live batches

    def as_dict(self) -> dict:
        return asdict(self)


class DeployGate:
    """Deploy a retrained model only if it beats the serving one on data neither trained on.

    Both models are scored on the held-out part of the most recent chunks (never trained on).
    The challenger wins when its accuracy exceeds the champion's by at least ``min_gain``
    (absolute) and by ``min_relative_gain`` × the champion's accuracy, and when at most
    ``max_negative_flip`` of the samples flip from right to wrong: users notice regressions
    on cases that used to work even when the average improves.

    Args:
        min_gain: required absolute accuracy gain (0.01 = one point).
        min_relative_gain: required gain relative to the champion's accuracy.
        max_negative_flip: cap on the negative-flip rate; ``None`` disables it.
        holdout_chunks: how many recent chunks' held-out parts are used.
        shadow_batches: when > 0, a challenger that passes on held-out data is not promoted
            yet: it serves in shadow (scored, never answering) on the next ``shadow_batches``
            labelled batches beside the champion, and the same comparison on that live data
            decides. Held-out chunks come from the past; this checks the challenger on the
            data it will actually meet. The first model always serves at once.
    """

    def __init__(self, min_gain: float = 0.0, min_relative_gain: float = 0.0,
                 max_negative_flip: float | None = 0.1, holdout_chunks: int = 3,
                 shadow_batches: int = 0) -> None:
        if holdout_chunks < 1:
            raise ConfigError(f"holdout_chunks={holdout_chunks} is invalid; allowed: 1 or more")
        if shadow_batches < 0:
            raise ConfigError(f"shadow_batches={shadow_batches} is invalid; allowed: 0 (no "
                              "shadow) or more")
        self.min_gain, self.min_relative_gain = min_gain, min_relative_gain
        self.max_negative_flip, self.holdout_chunks = max_negative_flip, holdout_chunks
        self.shadow_batches = shadow_batches

    def decide(self, step: int, champion_correct: Tensor, challenger_correct: Tensor
               ) -> Decision:
        """Compare per-sample correctness of both models on the same held-out samples."""
        n = len(champion_correct)
        champ = float(champion_correct.double().mean()) if n else float("nan")
        chall = float(challenger_correct.double().mean()) if n else float("nan")
        flips = negative_flip_rate(champion_correct, challenger_correct)
        required = max(self.min_gain, self.min_relative_gain * champ)
        if n == 0:
            deploy, reason = True, "no held-out data yet: deployed unchecked"
        elif chall - champ <= 0 or chall - champ < required:  # "beats" means strictly
            deploy, reason = False, f"gain {100 * (chall - champ):+.1f} pts, required > 0 and " \
                                    f">= {100 * required:.1f} pts"
        elif self.max_negative_flip is not None and flips > self.max_negative_flip:
            deploy, reason = False, f"negative flips {100 * flips:.1f}% > cap " \
                                    f"{100 * self.max_negative_flip:.1f}%"
        else:
            deploy, reason = True, f"gain {100 * (chall - champ):+.1f} pts, " \
                                   f"negative flips {100 * flips:.1f}%"
        return Decision(step, deploy, reason, champ, chall, flips, n)

    def __repr__(self) -> str:
        return (f"DeployGate(min_gain={self.min_gain}, min_relative_gain="
                f"{self.min_relative_gain}, max_negative_flip={self.max_negative_flip}, "
                f"holdout_chunks={self.holdout_chunks}, "
                f"shadow_batches={self.shadow_batches})")


def always_deploy(step: int, challenger_correct: Tensor) -> Decision:
    """The decision recorded when a policy has no gate."""
    acc = float(challenger_correct.double().mean()) if len(challenger_correct) else float("nan")
    return Decision(step, True, "no gate", float("nan"), acc, 0.0, len(challenger_correct))

