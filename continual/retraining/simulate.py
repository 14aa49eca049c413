"""Replay a deployment stream through a policy, test-then-train, and record everything.

At each step the serving model first predicts the arriving chunk and is scored on it
(prequential evaluation); the chunk's labels arrive ``label_delay`` steps later, when it
passes the policy's quality gate (without one, every chunk must be clean: a NaN input or a
label outside the classes is refused before the run), is split into a training and a
held-out part, and is shown to the trigger. When the trigger fires (and no cap forbids it) a
challenger is trained by the policy's update and the deploy gate decides on held-out data
whether it replaces the model; with ``DeployGate(shadow_batches=k)`` a challenger that passes
first serves in shadow on the next k chunks and the same comparison on them decides
(:mod:`continual.retraining.shadow`; scored when the chunk arrives, as the prequential row is).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from continual.data.lazy import first_inputs
from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.module import ContinualModule, OptimizerFactory, default_optimizer
from continual.retraining.gate import Decision, always_deploy
from continual.retraining.policy import Policy
from continual.retraining.quality import QualityReport, check_chunks
from continual.retraining.shadow import IN_SHADOW, Shadow, enters_shadow, shadow_note
from continual.retraining.train import correct, fit
from continual.retraining.triggers import Observation
from continual.retraining.updates import Plan, StoredChunk

HOLDOUT_CHUNKS = 3  # recent chunks whose held-out parts measure a model, when no gate says


@dataclass
class StepRecord:
    """What happened at one step of the stream."""

    step: int
    accuracy: float  # prequential accuracy of the serving model on this chunk (NaN: warm-up)
    n: int
    retrained: bool = False
    deployed: bool = False
    skipped: str | None = None  # why a fired trigger did not retrain (a cap, a shadow)
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
    policy.trigger.reset(deployed=False)
    champion = ContinualModule(copy.deepcopy(net), policy.update.strategy(), optimizer)
    champion.prepare_for(n_classes, first_inputs(chunks[0]), None)
    if policy.quality_gate is not None and policy.quality_gate.n_classes is None:
        policy.quality_gate.n_classes = n_classes
    elif policy.quality_gate is None:  # the chunks are taken as they are: they must be clean
        check_chunks(chunks, n_classes, policy.name)
    run = PolicyRun(policy.name, [], drift_points=list(drift_points or []),
                    description=repr(policy))
    settings = _Settings(n_classes, trainer, batch_size, eval_batch_size, seed, holdout_fraction)
    sim = _Simulation(chunks, policy, champion, settings, run, echo or _silent)
    sim.start(initial_chunks)
    for step in range(initial_chunks, len(chunks)):
        sim.serve(step, step - label_delay, initial_chunks)
    return run


@dataclass(frozen=True)
class _Settings:
    n_classes: int
    trainer: dict | None
    batch_size: int
    eval_batch_size: int
    seed: int
    holdout_fraction: float


class _Simulation:
    """One policy's pass over the stream: the serving model, the labelled history, the cost."""

    def __init__(self, chunks: list[TensorData], policy: Policy, champion: ContinualModule,
                 settings: _Settings, run: PolicyRun, say: Callable[[str], None]) -> None:
        self.chunks, self.policy, self.champion = chunks, policy, champion
        self.settings, self.run, self.say = settings, run, say
        self.history: list[StoredChunk] = []
        self.tasks: list[Task] = []  # what the serving model has learned, as a stream
        self.errors: dict[int, torch.Tensor] = {}  # per step, until its labels arrive
        self.since = 0  # history entries the serving model has seen
        self.shadow: Shadow | None = None  # a challenger scored beside the champion
        self.retrains, self.seconds, self.samples = 0, 0.0, 0

    def start(self, initial_chunks: int) -> None:
        """Train the first deployed model on the first ``initial_chunks`` chunks."""
        for step in range(initial_chunks):
            self.store(step)
        first = StepRecord(initial_chunks - 1, float("nan"), 0)
        self.retrain(initial_chunks - 1, first)
        self.retrains = 0  # caps count re-trainings; the first model's cost stays in the budget
        self.run.steps.extend([StepRecord(s, float("nan"), 0) for s in range(initial_chunks - 1)]
                              + [first])

    def serve(self, step: int, arrived: int, initial_chunks: int) -> None:
        """Score the serving model on chunk ``step`` (and a challenger in shadow beside it),
        take the labels of chunk ``arrived``, then give a shadow's verdict once it has seen
        its batches, or retrain when the trigger fires and no cap or shadow forbids it."""
        chunk = self.chunks[step]
        right = correct(self.champion, chunk, self.settings.eval_batch_size)
        self.errors[step] = ~right
        record = StepRecord(step, float(right.double().mean()) if len(right) else float("nan"),
                            len(right))
        self.run.steps.append(record)
        if self.shadow is not None:
            self.shadow.add(right, correct(self.shadow.model, chunk,
                                           self.settings.eval_batch_size))
        trigger = self.policy.trigger
        if arrived >= initial_chunks:
            keep = self.store(arrived)
            trigger.observe(Observation(arrived, self.errors.pop(arrived)[keep]))
        if self.shadow is not None and self.shadow.complete(self.policy.deploy_gate):
            self.conclude_shadow(step, record)
        elif trigger.fire():
            cap = self.policy.over_budget(self.retrains, self.seconds, self.samples)
            if self.shadow is not None:
                record.skipped = IN_SHADOW
            elif cap is None:
                self.retrain(step, record)
            else:
                record.skipped = cap

    def conclude_shadow(self, step: int, record: StepRecord) -> None:
        """The live verdict on the challenger in shadow: promote it or drop it."""
        shadow, self.shadow = self.shadow, None
        decision = shadow.verdict(self.policy.deploy_gate, step)
        self.run.decisions.append(decision)
        record.deployed = decision.deploy
        if decision.deploy:
            self.champion, self.since = shadow.model, shadow.since
        else:
            self.tasks.pop()
        self.policy.trigger.reset(deployed=decision.deploy,
                                  reference=decision.challenger_accuracy)
        self.say(f"[{self.policy.name}] step {step}: challenger of step {shadow.step} "
                 f"{'promoted' if decision.deploy else 'dropped'} ({decision.reason})")

    def store(self, step: int) -> torch.Tensor:
        """Add chunk ``step``, once labelled, to the history; the mask of samples kept."""
        chunk, gate = self.chunks[step], self.policy.quality_gate
        keep = torch.ones(len(chunk), dtype=torch.bool)
        if gate is not None:
            keep, report = gate.check(chunk, step)
            self.run.quality.append(report)
            if report.dropped:
                self.say(f"[{self.policy.name}] quality gate: {report.describe()}")
        train, holdout = _split(chunk.subset(keep), self.settings.holdout_fraction,
                                self.settings.seed * 100_003 + step)
        self.history.append(StoredChunk(step, train, holdout))
        return keep

    def retrain(self, step: int, record: StepRecord) -> None:
        """Train a challenger by the policy's update and let the deploy gate decide."""
        plan = self.policy.update.plan(self.history, self.since)
        if len(plan.data) == 0:
            record.skipped = "no new data"
            return
        challenger, seconds, samples = self._challenger(step, plan)
        record.retrained, record.train_seconds, record.train_samples = True, seconds, samples
        self.retrains, self.seconds = self.retrains + 1, self.seconds + seconds
        self.samples += samples
        decision = self._decide(step, challenger)
        gate = self.policy.deploy_gate
        if enters_shadow(gate, decision, first=len(self.run.decisions) == 1):
            decision = self.run.decisions[-1] = shadow_note(gate, decision)
            self.shadow = Shadow(step, len(self.history), challenger)
            self.say(f"[{self.policy.name}] step {step}: retrained on {len(plan.data):,} "
                     f"samples ({seconds:.1f} s) → shadow ({decision.reason})")
            return  # the trigger keeps watching the champion until the verdict
        record.deployed = decision.deploy
        if decision.deploy:
            self.champion, self.since = challenger, len(self.history)
        else:
            self.tasks.pop()  # the champion never learned it; its strategy state is unchanged
        self.policy.trigger.reset(deployed=decision.deploy,
                                  reference=decision.challenger_accuracy)
        self.say(f"[{self.policy.name}] step {step}: retrained on {len(plan.data):,} samples "
                 f"({seconds:.1f} s) → {'deployed' if decision.deploy else 'kept champion'} "
                 f"({decision.reason})")

    def _challenger(self, step: int, plan: Plan) -> tuple[ContinualModule, float, int]:
        """The champion's copy trained on ``plan`` as one more task; seconds and samples."""
        s = self.settings
        challenger = copy.deepcopy(self.champion)  # without the last batch (__getstate__)
        self.tasks.append(Task(len(self.tasks), f"retrain at step {step}",
                               plan.data.with_task(0), _empty(plan.data), _empty(plan.data),
                               list(range(s.n_classes))))
        stream = Stream(self.tasks, "domain", s.n_classes,
                        tuple(first_inputs(plan.data).shape[1:]))
        if plan.from_scratch:
            challenger.reset_net()
        index = len(self.tasks) - 1
        challenger.strategy.on_task_start(challenger, stream, index)
        seconds, samples = fit(challenger, plan.data, plan.weights, trainer=s.trainer,
                               batch_size=s.batch_size, seed=s.seed * 100_003 + step)
        challenger.strategy.on_task_end(challenger, stream, index)
        return challenger, seconds, samples

    def _decide(self, step: int, challenger: ContinualModule) -> Decision:
        gate, batch = self.policy.deploy_gate, self.settings.eval_batch_size
        holdout = _holdout(self.history, gate.holdout_chunks if gate else HOLDOUT_CHUNKS)
        new = correct(challenger, holdout, batch)
        if gate is None or not self.run.decisions:  # the first model always serves
            decision = always_deploy(step, new)
        else:
            decision = gate.decide(step, correct(self.champion, holdout, batch), new)
        self.run.decisions.append(decision)
        return decision


def _silent(_: str) -> None:
    pass


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
