"""Shadow (A/B) evaluation: a challenger that passed the held-out gate serves in shadow.

For the next ``DeployGate.shadow_batches`` labelled batches the champion still answers (its
score is the prequential row) while the challenger is scored on the same live samples; then
the gate's own comparison on that live data is the verdict. Held-out chunks are the past; a
challenger fitted to them can still lose on what comes next (a drift right after training).

The simulator keeps a :class:`Shadow` in memory; ``continual retrain`` keeps the same record in
its state as JSON (per-sample correctness as ``"0101…"`` strings) and decides with the same
:func:`live_verdict`, so both paths promote at the same steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from continual.module import ContinualModule
from continual.retraining.gate import Decision, DeployGate

IN_SHADOW = "challenger in shadow"  # why a firing trigger did not retrain


@dataclass
class Shadow:
    """A challenger in shadow, and both models' per-sample correctness on each live batch."""

    step: int  # the step it was trained at
    since: int  # history entries it has learned (the champion's ``since`` if promoted)
    model: ContinualModule | None = None  # the simulator's; production reloads it by step
    champion: list[Tensor] = field(default_factory=list)  # [n_b] bool per live batch
    challenger: list[Tensor] = field(default_factory=list)

    def add(self, champion_correct: Tensor, challenger_correct: Tensor) -> None:
        self.champion.append(champion_correct)
        self.challenger.append(challenger_correct)

    def complete(self, gate: DeployGate) -> bool:
        return len(self.champion) >= gate.shadow_batches

    def verdict(self, gate: DeployGate, step: int) -> Decision:
        return live_verdict(gate, step, self.champion, self.challenger)

    def as_state(self, version: str) -> dict[str, Any]:
        """The JSON form kept in a deployment's state (the model is the saved one of ``step``)."""
        return {"step": self.step, "since": self.since, "version": version,
                "champion": [to_bits(t) for t in self.champion],
                "challenger": [to_bits(t) for t in self.challenger]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Shadow:
        return cls(state["step"], state["since"],
                   champion=[from_bits(b) for b in state["champion"]],
                   challenger=[from_bits(b) for b in state["challenger"]])


def enters_shadow(gate: DeployGate | None, decision: Decision, first: bool) -> bool:
    """Whether a challenger the held-out gate passed goes to shadow instead of serving."""
    return gate is not None and gate.shadow_batches > 0 and decision.deploy and not first


def shadow_note(gate: DeployGate, decision: Decision) -> Decision:
    """The held-out decision of a challenger sent to shadow, its reason saying so."""
    return dataclasses.replace(decision, reason=f"{decision.reason}; in shadow for the next "
                                                f"{gate.shadow_batches} batches")


def live_verdict(gate: DeployGate, step: int, champion: list[Tensor],
                 challenger: list[Tensor]) -> Decision:
    """The gate's comparison on the live batches both models were scored on."""
    empty = torch.zeros(0, dtype=torch.bool)
    old = torch.cat(champion) if champion else empty
    new = torch.cat(challenger) if challenger else empty
    decision = gate.decide(step, old, new)
    return dataclasses.replace(
        decision, stage="shadow",
        reason=f"shadow verdict on {len(champion)} live batches: {decision.reason}")


def publish_verdict(registry: Any, shadow: dict[str, Any], gate: DeployGate, step: int,
                    timestamp: int, kill_point: Callable[[str], None]) -> dict[str, Any]:
    """The live verdict on a deployment's shadow, recorded on its version; ``champion`` moves
    to the version only if it won. Both registry writes are idempotent: a killed call redoes
    them."""
    verdict = Shadow.from_state(shadow).verdict(gate, step).as_dict()
    registry.record_decision(shadow["version"], verdict, timestamp)
    kill_point("shadow:promote")
    if verdict["deploy"]:
        registry.set_alias("champion", shadow["version"])
    return verdict


def describe_verdict(shadow: dict[str, Any], decision: dict[str, Any]) -> str:
    outcome = "promoted to champion" if decision["deploy"] else "dropped"
    return (f"version {shadow['version']} (in shadow since step {shadow['step']}) {outcome} "
            f"({decision['reason']})")


def conclude_state(state: dict[str, Any], decision: dict[str, Any]) -> None:
    """A deployment state after the verdict ``decision`` on its shadow: recorded, the version
    promoted if it won (the champion then has learned what the challenger was trained on, not
    what arrived during the shadow), the trigger reset, the shadow ended."""
    shadow = state["shadow"]
    state["decisions"].append(decision)
    if decision["deploy"]:
        state["tasks"].append(shadow["task"])
        state["champion"] = {"step": shadow["step"], "version": shadow["version"]}
        state["since"] = shadow["since"]
    state["events"].append(["reset", decision["deploy"], decision["challenger_accuracy"]])
    state["shadow"] = None


def to_bits(correct: Tensor) -> str:
    """Per-sample correctness as a string of 0 and 1 (compact, plain JSON)."""
    return "".join("1" if c else "0" for c in correct.tolist())


def from_bits(bits: str) -> Tensor:
    return torch.tensor([b == "1" for b in bits], dtype=torch.bool)
