"""Replay a deployment stream through a policy, test-then-train, and record everything.

At each step the serving model first predicts the arriving chunk and is scored on it
(prequential evaluation); the chunk's labels arrive ``label_delay`` steps later, when it
passes the quality gate, is split into a training and a held-out part, and is shown to the
trigger. When the trigger fires (and no cap forbids it) a challenger is trained by the
policy's update and the deploy gate decides on held-out data whether it replaces the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.module import ContinualModule, OptimizerFactory, default_optimizer
from continual.retraining.gate import Decision, always_deploy
from continual.retraining.policy import Policy
from continual.retraining.quality import QualityReport
from continual.retraining.train import correct, fit
from continual.retraining.triggers import Observation
from continual.retraining.updates import StoredChunk

HOLDOUT_CHUNKS = 3  # recent chunks whose held-out parts measure a model, when no gate says


@dataclass
class StepRecord:
    """What happened at one step of the stream."""

    step: int
    accuracy: float  # prequential accuracy of the serving model on this chunk (NaN: warm-up)
    n: int
    retrained: bool = False
    deployed: bool = False
    skipped: str | None = None  # why a fired trigger did not retrain (a cap)
    train_seconds: float = 0.0
    train_samples: int = 0


@dataclass
class PolicyRun:
    """One policy's trajectory over a stream."""

    policy: str
    steps: list[StepRecord]
    decisions: list[Decision] = field(default_factory=list)
    quality: list[QualityReport] = field(default_factory=list)
    drift_points: list[int] = field(default_factory=list)
    description: str = ""

    def as_dict(self) -> dict:
        return {"policy": self.policy, "description": self.description,
                "drift_points": self.drift_points,
                "steps": [asdict(s) for s in self.steps],
                "decisions": [d.as_dict() for d in self.decisions],
                "quality": [q.as_dict() for q in self.quality]}


def simulate(
    chunks: list[TensorData],
    policy: Policy,
    net: nn.Module,
    *,
    n_classes: int,
    optimizer: OptimizerFactory = default_optimizer,
    trainer: dict | None = None,
    batch_size: int = 32,
    eval_batch_size: int = 1024,
    seed: int = 0,
    holdout_fraction: float = 0.2,
    label_delay: int = 0,
    initial_chunks: int = 1,
    drift_points: list[int] | None = None,
    echo: Callable[[str], None] | None = None,
) -> PolicyRun:
    """Run ``policy`` over ``chunks`` in time order; ``net`` is copied, never modified.

    The first ``initial_chunks`` chunks train the first deployed model and are not scored.
    """
    _check(len(chunks), holdout_fraction, label_delay, initial_chunks)
    policy = copy.deepcopy(policy)  # triggers and strategies hold state: each run its own
    say = echo or (lambda _: None)
    update, trigger = policy.update, policy.trigger
    trigger.reset(deployed=False)
    champion = ContinualModule(copy.deepcopy(net), update.strategy(), optimizer)
    champion.prepare_for(n_classes, chunks[0].x, None)
    if policy.quality_gate is not None and policy.quality_gate.n_classes is None:
        policy.quality_gate.n_classes = n_classes
    run = PolicyRun(policy.name, [], drift_points=list(drift_points or []),
                    description=repr(policy))
    history: list[StoredChunk] = []
    tasks: list[Task] = []
    errors: dict[int, torch.Tensor] = {}
    state = {"since": 0, "retrains": 0, "seconds": 0.0, "samples": 0}

    def store(step: int) -> torch.Tensor:
        chunk = chunks[step]
        keep = torch.ones(len(chunk), dtype=torch.bool)
        if policy.quality_gate is not None:
            keep, report = policy.quality_gate.check(chunk, step)
            run.quality.append(report)
            if report.dropped:
                say(f"[{policy.name}] quality gate: {report.describe()}")
        train, holdout = _split(chunk.subset(keep), holdout_fraction, seed * 100_003 + step)
        history.append(StoredChunk(step, train, holdout))
        return keep

    def retrain(step: int, record: StepRecord) -> None:
        nonlocal champion
        plan = update.plan(history, state["since"])
        if len(plan.data) == 0:
            record.skipped = "no new data"
            return
        challenger = copy.deepcopy(champion)  # without the last batch's graph (__getstate__)
        tasks.append(Task(len(tasks), f"retrain at step {step}", plan.data.with_task(0),
                          _empty(plan.data), _empty(plan.data), list(range(n_classes))))
        stream = Stream(tasks, "domain", n_classes, tuple(plan.data.x.shape[1:]))
        if plan.from_scratch:
            challenger.reset_net()
        index = len(tasks) - 1
        challenger.strategy.on_task_start(challenger, stream, index)
        seconds, samples = fit(challenger, plan.data, plan.weights, trainer=trainer,
                               batch_size=batch_size, seed=seed * 100_003 + step)
        challenger.strategy.on_task_end(challenger, stream, index)
        record.retrained, record.train_seconds, record.train_samples = True, seconds, samples
        state["retrains"] += 1
        state["seconds"] += seconds
        state["samples"] += samples
        holdout = _holdout(history, policy.deploy_gate.holdout_chunks if policy.deploy_gate
                           else HOLDOUT_CHUNKS)
        new = correct(challenger, holdout, eval_batch_size)
        if policy.deploy_gate is None or not run.decisions:  # the first model always serves
            decision = always_deploy(step, new)
        else:
            decision = policy.deploy_gate.decide(step, correct(champion, holdout,
                                                               eval_batch_size), new)
        run.decisions.append(decision)
        record.deployed = decision.deploy
        if decision.deploy:
            champion = challenger
            state["since"] = len(history)
        else:
            tasks.pop()  # the champion never learned it; its strategy state is unchanged
        trigger.reset(deployed=decision.deploy, reference=decision.challenger_accuracy)
        say(f"[{policy.name}] step {step}: retrained on {len(plan.data):,} samples "
            f"({seconds:.1f} s) → {'deployed' if decision.deploy else 'kept champion'} "
            f"({decision.reason})")

    for step in range(initial_chunks):
        store(step)
    first = StepRecord(initial_chunks - 1, float("nan"), 0)
    retrain(initial_chunks - 1, first)
    state["retrains"] = 0  # caps count re-trainings; the first model's cost stays in the budget
    run.steps.extend([StepRecord(s, float("nan"), 0) for s in range(initial_chunks - 1)]
                     + [first])
    for step in range(initial_chunks, len(chunks)):
        right = correct(champion, chunks[step], eval_batch_size)
        errors[step] = ~right
        record = StepRecord(step, float(right.double().mean()) if len(right) else float("nan"),
                            len(right))
        run.steps.append(record)
        arrived = step - label_delay
        if arrived >= initial_chunks:
            keep = store(arrived)
            trigger.observe(Observation(arrived, errors.pop(arrived)[keep]))
        if trigger.fire():
            cap = policy.over_budget(state["retrains"], state["seconds"], state["samples"])
            if cap is None:
                retrain(step, record)
            else:
                record.skipped = cap
    return run


def _check(n: int, holdout_fraction: float, label_delay: int, initial_chunks: int) -> None:
    if not 0 <= holdout_fraction < 1:
        raise ConfigError(f"holdout_fraction={holdout_fraction} is invalid; allowed: [0, 1)")
    if label_delay < 0:
        raise ConfigError(f"label_delay={label_delay} is invalid; allowed: 0 or more")
    if not 1 <= initial_chunks < n:
        raise ConfigError(f"initial_chunks={initial_chunks} is invalid for a stream of {n} "
                          f"chunks; allowed: 1..{n - 1}")


def _split(chunk: TensorData, fraction: float, seed: int) -> tuple[TensorData, TensorData]:
    """A random ``fraction`` of the chunk held out from training (for the deploy gate)."""
    order = torch.randperm(len(chunk), generator=torch.Generator().manual_seed(seed))
    n_out = int(round(fraction * len(chunk)))
    return chunk.subset(order[n_out:]), chunk.subset(order[:n_out])


def _holdout(history: list[StoredChunk], k: int) -> TensorData:
    parts = [c.holdout for c in history[-k:] if len(c.holdout)]
    return TensorData.concat(parts) if parts else _empty(history[-1].train)


def _empty(data: TensorData) -> TensorData:
    return data.subset(slice(0, 0))
