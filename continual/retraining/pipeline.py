"""One production retraining step: a new labelled batch through the policy, crash-safe.

The step follows :func:`~continual.retraining.simulate.simulate` exactly, one chunk per call:
the serving model is scored on the batch (the prequential row), the batch passes the quality
gate and is stored, the trigger sees the serving model's errors, and when it fires (no cap
forbidding) a challenger is trained by the policy's update, registered, gated and, if it wins,
promoted. The trigger's state is not pickled: it is rebuilt every call by replaying its
recorded inputs (each batch's errors, each reset) into a fresh trigger from the config, so any
trigger (river's detectors too) persists as tensors and JSON.

A step is a sequence of phases (``monitor``, ``score``, ``train``, ``register``, ``gate``,
``promote``, or ``shadow`` for the verdict on a challenger in shadow, then ``commit``); each
finished phase is recorded in the deployment's journal with what it produced, and the state
is committed once, last. Every phase is deterministic and
every registry write idempotent, so a step killed anywhere and called again ends where an
uninterrupted step would. ``CONTINUAL_RETRAIN_KILL_AT=<phase>`` makes the process SIGKILL
itself on entering that phase (for the tests that prove it).
"""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.errors import ConfigError
from continual.module import ContinualModule, OptimizerFactory
from continual.retraining.deployment import Deployment, batch_hash, read_inputs
from continual.retraining.gate import always_deploy
from continual.retraining.monitor import Monitor, logged_metrics
from continual.retraining.policy import Policy
from continual.retraining.registry import Registry
from continual.retraining.shadow import (
    IN_SHADOW,
    Shadow,
    conclude_state,
    describe_verdict,
    enters_shadow,
    publish_verdict,
    shadow_note,
    to_bits,
)
from continual.retraining.simulate import HOLDOUT_CHUNKS, StepRecord, _holdout, _split
from continual.retraining.sources import _read_xy
from continual.retraining.step_logs import StepLogs, marks
from continual.retraining.train import correct, fit
from continual.retraining.triggers import Observation, Trigger
from continual.retraining.updates import StoredChunk

KILL_AT = "CONTINUAL_RETRAIN_KILL_AT"


@dataclass
class Settings:
    """What a step needs besides the deployment folder (all from the config)."""

    policy: Policy
    net: nn.Module  # the untrained network, as the seeded config builds it
    optimizer: OptimizerFactory
    n_classes: int | None
    trainer: dict | None
    batch_size: int
    eval_batch_size: int
    seed: int
    holdout_fraction: float
    initial_chunks: int
    config_text: str
    monitor: Monitor | None = None
    model_name: str = "continual"
    tracking_uri: str | None = None


def kill_point(phase: str) -> None:
    """SIGKILL this process on entering ``phase`` when the test hook asks for it."""
    if os.environ.get(KILL_AT) == phase:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


class RetrainStep:
    """``continual retrain``'s work on one deployment folder."""

    def __init__(self, folder: str | Path, settings: Settings,
                 say: Callable[[str], None] | None = None, logs: StepLogs | None = None
                 ) -> None:
        self.dep, self.s, self.logs = Deployment(folder), settings, logs
        self.say = say or (lambda _: None)
        self.dep.root.mkdir(parents=True, exist_ok=True)
        self.dep.check_config(settings.config_text)
        self.config_sha = hashlib.sha256(settings.config_text.encode()).hexdigest()
        self.registry = Registry(settings.tracking_uri, settings.model_name, self.dep.root)

    # -- the calls -------------------------------------------------------------------------
    def inputs(self, path: Path) -> None:
        """Monitor unlabelled inputs (once per file content)."""
        key = batch_hash(path)
        state = self.dep.load_state()
        if key in state["monitor_calls"]:
            self.say(f"{path}: inputs already monitored (sha256 {key[:12]}), nothing to do")
            return
        row = self._monitor(state, read_inputs(path), key, len(state["steps"]))
        if row is None:  # not recorded as seen: the same file is monitored once it can be
            why = "the monitor is off" if self.s.monitor is None else "no serving model yet"
            self.say(f"{path}: inputs not monitored ({why})")
            return
        before = marks(state)
        state["monitor_calls"].append(key)
        state["monitor"].append(row)
        self._log_monitor(row, int(time.time() * 1000))
        self.dep.commit(state)
        self.committed(state, before)

    def committed(self, state: dict[str, Any], before: dict[str, int]) -> None:
        """Send what the commit just made durable to the configured loggers."""
        if self.logs is not None:
            self.logs.committed(state, before)

    def batch(self, path: Path) -> None:
        """Process one labelled batch file (nothing happens for one already processed)."""
        key = batch_hash(path)
        state = self.dep.load_state()
        if any(s["hash"] == key for s in state["steps"]):
            self.say(f"{path}: batch already processed (sha256 {key[:12]}), nothing to do")
            return
        journal = self.dep.journal()
        if journal is not None and journal["hash"] != key:
            raise ConfigError(f"batch={str(path)!r}: the step for {journal['file']} (sha256 "
                              f"{journal['hash'][:12]}) was interrupted; allowed: call "
                              "continual retrain with that batch first, to finish it")
        if journal is None:
            journal = {"hash": key, "file": str(path), "step": len(state["steps"]),
                       "time": int(time.time() * 1000), "done": {}}
            self.dep.write_journal(journal)
        x, y = _read_xy(path)
        _Step(self, state, journal, TensorData(x, y)).run()

    # -- shared pieces ---------------------------------------------------------------------
    def module(self, version_step: int | None) -> ContinualModule:
        """The serving model as of a saved step (``None``: the untrained network)."""
        policy = copy.deepcopy(self.s.policy)
        module = ContinualModule(copy.deepcopy(self.s.net), policy.update.strategy(),
                                 self.s.optimizer)
        module.prepare_for(self.n_classes(module), self._example, None)
        if version_step is not None:
            self.dep.load_model(module, version_step)
        return module

    def n_classes(self, module: ContinualModule | None = None) -> int:
        if self.s.n_classes is not None:
            return self.s.n_classes
        with torch.no_grad():
            return int(self.s.net(self._example[:1]).shape[-1])

    def trigger(self, state: dict[str, Any], errors: dict[int, torch.Tensor]) -> Trigger:
        """A fresh trigger from the config, fed every recorded input in order."""
        trigger = copy.deepcopy(self.s.policy.trigger)
        for event in state["events"]:
            if event[0] == "observe":
                trigger.observe(Observation(event[1], errors[event[1]]))
            else:
                trigger.reset(deployed=event[1], reference=event[2])
        return trigger

    def _monitor(self, state: dict[str, Any], x: torch.Tensor, source: str, step: int
                 ) -> dict[str, Any] | None:
        champion = state["champion"]
        if self.s.monitor is None or champion is None:
            return None
        self._example = x
        module = self.module(champion["step"])
        reference = self.dep.load_reference(champion["step"])
        row = self.s.monitor.check(module, reference, x, seed=self.s.seed * 100_003 + step)
        row = {"index": len(state["monitor"]), "step": step, "source": source, **row}
        if row["alarm"]:
            self.say(f"monitor: {row['describe']}")
        return row

    def _log_monitor(self, row: dict[str, Any], timestamp: int) -> None:
        self.registry.log_metrics(self.registry.deployment_run(), logged_metrics(row),
                                  row["index"], timestamp)


class _Step:
    """One labelled batch's phases; what each produced is kept in the journal."""

    def __init__(self, owner: RetrainStep, state: dict[str, Any], journal: dict[str, Any],
                 chunk: TensorData) -> None:
        self.o, self.s, self.state, self.j, self.chunk = owner, owner.s, state, journal, chunk
        self.step = int(journal["step"])
        self.before = marks(state)  # the rows this step adds are sent after its commit
        owner._example = chunk.x

    def done(self, phase: str, **values: Any) -> None:
        self.j["done"][phase] = values
        self.o.dep.write_journal(self.j)

    def run(self) -> None:
        state, step, s = self.state, self.step, self.s
        record = StepRecord(step, float("nan"), 0)
        alarm = False
        if "monitor" not in self.j["done"]:
            kill_point("monitor")
            row = self.o._monitor(state, self.chunk.x, self.j["hash"], step)
            self.done("monitor", row=row)
        row = self.j["done"]["monitor"]["row"]
        if row is not None:
            state["monitor"].append(row)
            alarm = row["alarm"] and s.monitor is not None and s.monitor.trigger
        if "score" not in self.j["done"]:
            kill_point("score")
            self.done("score", **self._score_and_store())
        scored = self.j["done"]["score"]
        record.accuracy, record.n = scored["accuracy"], scored["n"]
        state["quality"].extend([scored["quality"]] if scored["quality"] else [])
        shadow = state.get("shadow")
        if scored.get("shadow"):
            shadow["champion"].append(scored["shadow"][0])
            shadow["challenger"].append(scored["shadow"][1])
        history, errors = self.o.dep.load_history(step + 1)
        if step >= s.initial_chunks:
            state["events"].append(["observe", step])
        fire = step == s.initial_chunks - 1
        if step >= s.initial_chunks:
            fire = self.o.trigger(state, errors).fire() or alarm
        if shadow is not None and len(shadow["champion"]) >= s.policy.deploy_gate.shadow_batches:
            self._conclude_shadow(record)
        elif fire:
            cap = s.policy.over_budget(state["retrains"], state["seconds"], state["samples"])
            if shadow is not None:
                record.skipped = IN_SHADOW
            elif cap is None or step == s.initial_chunks - 1:
                self._retrain(history, record)
            else:
                record.skipped = cap
        self._commit(record)

    def _score_and_store(self) -> dict[str, Any]:
        """The prequential row, then the batch after the quality gate, stored and split."""
        state, s, chunk = self.state, self.s, self.chunk
        errors, accuracy, shadow = None, None, None
        if self.step >= s.initial_chunks:
            right = correct(self.o.module(state["champion"]["step"]), chunk, s.eval_batch_size)
            errors = ~right
            accuracy = float(right.double().mean()) if len(right) else None
            if state.get("shadow") is not None:  # the challenger in shadow, on the same batch
                other = correct(self.o.module(state["shadow"]["step"]), chunk, s.eval_batch_size)
                shadow = [to_bits(right), to_bits(other)]
        keep = torch.ones(len(chunk), dtype=torch.bool)
        report = None
        gate = copy.deepcopy(s.policy.quality_gate)
        if gate is not None:
            if gate.n_classes is None:
                gate.n_classes = self.o.n_classes()
            keep, quality = gate.check(chunk, self.step)
            report = quality.as_dict()
        train, holdout = _split(chunk.subset(keep), s.holdout_fraction,
                                s.seed * 100_003 + self.step)
        self.o.dep.save_chunk(StoredChunk(self.step, train, holdout),
                              None if errors is None else errors[keep])
        return {"accuracy": accuracy, "n": len(chunk) if errors is not None else 0,
                "quality": report, "shadow": shadow}

    def _retrain(self, history: list[StoredChunk], record: StepRecord) -> None:
        state, s, step = self.state, self.s, self.step
        plan = s.policy.update.plan(history, state["since"])
        if len(plan.data) == 0:
            record.skipped = "no new data"
            return
        if "train" not in self.j["done"]:
            kill_point("train")
            self.done("train", **self._train(history, plan))
        trained = self.j["done"]["train"]
        record.retrained = True
        record.train_seconds, record.train_samples = trained["seconds"], trained["samples"]
        if step >= s.initial_chunks:  # the first model's cost stays in the budget, not the count
            state["retrains"] += 1
        state["seconds"] += trained["seconds"]
        state["samples"] += trained["samples"]
        if "register" not in self.j["done"]:
            kill_point("register")
            self.done("register", version=self._register(trained))
        version = self.j["done"]["register"]["version"]
        if "gate" not in self.j["done"]:
            kill_point("gate")
            decision, to_shadow = self._decide(history)
            self.o.registry.record_decision(version, decision, self.j["time"])
            self.done("gate", decision=decision, shadow=to_shadow)
        decision = self.j["done"]["gate"]["decision"]
        to_shadow = self.j["done"]["gate"]["shadow"]
        state["decisions"].append(decision)
        record.deployed = decision["deploy"] and not to_shadow
        if "promote" not in self.j["done"]:
            kill_point("promote")
            if record.deployed:
                self.o.registry.set_alias("champion", version)
            self.done("promote")
        task = [step, len(history), state["since"]]  # what the champion's strategies will see
        if to_shadow:  # the trigger keeps watching the champion until the verdict
            state["shadow"] = {**Shadow(step, len(history)).as_state(version), "task": task}
        elif decision["deploy"]:
            state["tasks"].append(task)
            state["champion"] = {"step": step, "version": version}
            state["since"] = len(history)
        if not to_shadow:
            state["events"].append(["reset", decision["deploy"], decision["challenger_accuracy"]])
        outcome = "in shadow" if to_shadow else \
            "promoted to champion" if decision["deploy"] else "rejected"
        self.o.say(f"step {step}: retrained on {len(plan.data):,} samples → version {version} "
                   f"{outcome} ({decision['reason']})")

    def _conclude_shadow(self, record: StepRecord) -> None:
        """The live verdict on the version in shadow (the ``shadow`` phase)."""
        shadow = self.state["shadow"]
        if "shadow" not in self.j["done"]:
            kill_point("shadow")
            decision = publish_verdict(self.o.registry, shadow, self.s.policy.deploy_gate,
                                       self.step, self.j["time"], kill_point)
            self.done("shadow", decision=decision)
        decision = self.j["done"]["shadow"]["decision"]
        record.deployed = decision["deploy"]
        conclude_state(self.state, decision)
        self.o.say(f"step {self.step}: {describe_verdict(shadow, decision)}")

    def _train(self, history: list[StoredChunk], plan: Any) -> dict[str, Any]:
        state, s, step = self.state, self.s, self.step
        champion = state["champion"]
        challenger = self.o.module(champion["step"] if champion else None)
        n_classes = self.o.n_classes()
        empty = plan.data.subset(slice(0, 0))
        # Earlier tasks as the strategies see them: their classes (LwF's heads); their data
        # is not read by any hook, so it is not reloaded.
        tasks = [Task(i, f"retrain at step {t[0]}", empty, empty, empty, list(range(n_classes)))
                 for i, t in enumerate(state["tasks"])]
        tasks.append(Task(len(tasks), f"retrain at step {step}", plan.data.with_task(0), empty,
                          empty, list(range(n_classes))))
        stream = Stream(tasks, "domain", n_classes, tuple(plan.data.x.shape[1:]))
        if plan.from_scratch:
            challenger.reset_net()
        index = len(tasks) - 1
        challenger.strategy.on_task_start(challenger, stream, index)
        seconds, samples = fit(challenger, plan.data, plan.weights, trainer=s.trainer,
                               batch_size=s.batch_size, seed=s.seed * 100_003 + step)
        challenger.strategy.on_task_end(challenger, stream, index)
        batches = _plan_steps(s.policy, history, state["since"])
        # The monitor's reference: held-out inputs of the batches this model learned from.
        reference = torch.cat([history[b].holdout.x for b in batches])
        self.o.dep.save_model(challenger, step, reference)
        kill_point("train:saved")
        return {"seconds": seconds, "samples": samples, "batches": batches}

    def _register(self, trained: dict[str, Any]) -> str:
        hashes = {s["step"]: s["hash"] for s in self.state["steps"]}
        hashes[self.step] = self.j["hash"]
        champion = self.state["champion"]
        lineage = {"step": self.step, "batches": [hashes[b] for b in trained["batches"]],
                   "batch_steps": trained["batches"], "policy": self.s.policy.name,
                   "parent_version": champion["version"] if champion else None,
                   "config_sha256": self.o.config_sha, "config": self.s.config_text}
        metrics = {"train/seconds": trained["seconds"], "train/samples": trained["samples"]}
        version = self.o.registry.register(self.j["hash"], self.o.dep.model_path(self.step),
                                           lineage, metrics, self.j["time"], say=kill_point)
        self.o.registry.set_alias("challenger", version)
        return version

    def _decide(self, history: list[StoredChunk]) -> tuple[dict[str, Any], bool]:
        """The held-out gate's decision, and whether the challenger goes to shadow."""
        state, s = self.state, self.s
        gate = s.policy.deploy_gate
        holdout = _holdout(history, gate.holdout_chunks if gate else HOLDOUT_CHUNKS)
        new = correct(self.o.module(self.step), holdout, s.eval_batch_size)
        if gate is None or not state["decisions"]:  # the first model always serves
            decision = always_deploy(self.step, new)
        else:
            old = correct(self.o.module(state["champion"]["step"]), holdout, s.eval_batch_size)
            decision = gate.decide(self.step, old, new)
        to_shadow = enters_shadow(gate, decision, first=not state["decisions"])
        if to_shadow:
            decision = shadow_note(gate, decision)
        return decision.as_dict(), to_shadow

    def _commit(self, record: StepRecord) -> None:
        kill_point("commit")
        row = {**asdict(record), "hash": self.j["hash"], "file": Path(self.j["file"]).name,
               "version": self.j["done"].get("register", {}).get("version")}
        row["accuracy"] = record.accuracy if record.accuracy == record.accuracy else None
        metrics = {"prequential/retrained": float(record.retrained),
                   "prequential/deployed": float(record.deployed)}
        if row["accuracy"] is not None:
            metrics["prequential/accuracy"] = row["accuracy"]
        registry = self.o.registry
        registry.log_metrics(registry.deployment_run(), metrics, self.step, self.j["time"])
        monitor_row = self.j["done"]["monitor"]["row"]
        if monitor_row is not None:
            self.o._log_monitor(monitor_row, self.j["time"])
        self.state["steps"].append(row)
        self.o.dep.commit(self.state)
        self.o.committed(self.state, self.before)
        accuracy = "—" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f}%"
        self.o.say(f"step {self.step}: {Path(self.j['file']).name} → accuracy {accuracy}"
                   f"{', retrained' if record.retrained else ''}"
                   f"{', promoted' if record.deployed else ''}"
                   f"{f' (skipped: {record.skipped})' if record.skipped else ''}")


def _plan_steps(policy: Policy, history: list[StoredChunk], since: int) -> list[int]:
    """Which stored batches the update's plan trains on: the plan of a probe history whose
    chunk ``i`` is one sample with input ``i`` (an update selects chunks, it never reads them)."""
    probe = [StoredChunk(c.step, TensorData(torch.tensor([[float(i)]]), torch.zeros(1)),
                         TensorData(torch.zeros(0, 1), torch.zeros(0)))
             for i, c in enumerate(history)]
    steps = policy.update.plan(probe, since).data.x.flatten().long().tolist()
    return sorted(set(steps))
