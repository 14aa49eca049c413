"""A ``continual retrain`` step SIGKILLed in any phase, then called again, leaves the registry
and the deployment as an uninterrupted step does (the journal and idempotent writes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from continual.cli import main

pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

POLICY = textwrap.dedent("""\
    model:
      net:
        class_path: continual.nets.MLP
        init_args: {in_features: 64, hidden: [32], n_classes: 10}
    trainer: {max_epochs: 2}
    initial_chunks: 2
    policies:
      - name: every-er
        trigger: {class_path: continual.retraining.EveryK, init_args: {k: 1}}
        update:
          class_path: continual.retraining.Incremental
          init_args:
            strategy: {class_path: continual.strategies.ExperienceReplay,
                       init_args: {buffer_size: 50}}
        deploy_gate: {min_gain: 0.0, max_negative_flip: null}
    """)
NAME = "continual-every-er"
# The same with a shadow of one batch: the 3rd batch's challenger goes to shadow, the 4th
# batch gives the verdict (the ``shadow`` phase) instead of training.
SHADOW_POLICY = POLICY.replace("name: every-er", "name: every-er-shadow").replace(
    "max_negative_flip: null}", "max_negative_flip: null, shadow_batches: 1}").replace(
    "max_epochs: 2", "max_epochs: 20")  # models past chance: the 3rd batch's one passes
SHADOW_NAME = "continual-every-er-shadow"


def _args(tmp: Path, deploy: Path, batch: Path, logger: str = "[csv]") -> list[str]:
    return ["retrain", "--config", str(tmp / "policy.yaml"), "--deployment", str(deploy),
            "--n_classes", "10", "--quiet", "true", "--batch", str(batch), "--logger", logger]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A deployment after 3 batches, the 4th batch, and the uninterrupted result of it."""
    return _prepare(tmp_path_factory.mktemp("crash"), POLICY, NAME)


@pytest.fixture(scope="module")
def shadow_base(tmp_path_factory):
    """The same with a challenger in shadow after 3 batches, judged on the 4th."""
    tmp, batch, whole = _prepare(tmp_path_factory.mktemp("shadow"), SHADOW_POLICY, SHADOW_NAME)
    assert [d["stage"] for d in whole["state"]["decisions"]] == ["holdout", "holdout", "shadow"]
    return tmp, batch, whole


def _prepare(tmp: Path, policy: str, name: str) -> tuple[Path, Path, dict]:
    from continual.retraining import DriftingChunks

    (tmp / "policy.yaml").write_text(policy)
    stream = DriftingChunks(kind="sudden", concept="labels", n_steps=4, chunk_size=60,
                            drift_at=3).build()
    paths = []
    for i, chunk in enumerate(stream.chunks):
        paths.append(tmp / f"batch-{i}.npz")
        np.savez(paths[-1], x=chunk.x.numpy(), y=chunk.y.numpy())
    for path in paths[:3]:
        assert main(_args(tmp, tmp / "base", path)) == 0
    shutil.copytree(tmp / "base", tmp / "whole")
    assert main(_args(tmp, tmp / "whole", paths[3])) == 0
    return tmp, paths[3], snapshot(tmp / "whole", name)


def snapshot(deploy: Path, name: str = NAME) -> dict:
    """The registry's versions, aliases and metrics, and the committed state, minus timings
    and ids that differ from run to run by nature."""
    client = MlflowClient(tracking_uri=f"sqlite:///{deploy / 'mlflow.db'}")
    model = client.get_registered_model(name)
    versions, metrics = {}, {}
    for v in client.search_model_versions(f"name = '{name}'"):
        versions[str(v.version)] = (v.status, dict(v.tags), Path(v.source).name)
    experiment = client.get_experiment_by_name(name)
    for run in client.search_runs([experiment.experiment_id]):
        key = run.data.tags["continual.step_key"]
        metrics[key] = sorted(
            (m.key, m.step, m.value) for name in run.data.metrics
            if name != "train/seconds"
            for m in client.get_metric_history(run.info.run_id, name))
    state = json.loads((deploy / "state.json").read_text())
    for step in state["steps"]:
        step.pop("train_seconds")
    state.pop("seconds")
    return {"aliases": {k: str(v) for k, v in model.aliases.items()}, "versions": versions,
            "metrics": metrics, "state": state, "journal": (deploy / "journal.json").exists()}


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["monitor", "score", "train", "train:saved",
                                   "register:artifacts", "register:version", "gate",
                                   "promote", "commit"])
def test_sigkill_in_a_phase_then_again_equals_an_unbroken_step(base, phase):
    tmp, batch, whole = base
    deploy = tmp / f"killed-{phase.replace(':', '-')}"
    shutil.copytree(tmp / "base", deploy)
    env = {**os.environ, "CONTINUAL_RETRAIN_KILL_AT": phase}
    killed = subprocess.run([sys.executable, "-m", "continual.cli", *_args(tmp, deploy, batch)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (deploy / "journal.json").exists()  # the step is recorded as unfinished
    assert main(_args(tmp, deploy, batch)) == 0
    assert snapshot(deploy) == whole


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["shadow", "shadow:promote", "commit"])
def test_sigkill_in_the_shadow_verdict_then_again_equals_an_unbroken_step(shadow_base, phase):
    from wandb_records import read_offline_run

    tmp, batch, whole = shadow_base
    deploy = tmp / f"killed-{phase.replace(':', '-')}"
    shutil.copytree(tmp / "base", deploy)
    env = {**os.environ, "CONTINUAL_RETRAIN_KILL_AT": phase}
    args = _args(tmp, deploy, batch, logger="[wandb]")
    killed = subprocess.run([sys.executable, "-m", "continual.cli", *args], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (deploy / "journal.json").exists()
    assert main(args) == 0
    assert snapshot(deploy, SHADOW_NAME) == whole
    # W&B got the step's rows once: from the call that committed it, none from the killed one
    history = [h for run in deploy.glob("wandb/offline-run-*")
               for h in read_offline_run(run).history]
    assert [h["step"] for h in history if "prequential/accuracy" in h] == [3]
    assert [h["step"] for h in history if h.get("decision/shadow") == 1] == [3]


@pytest.mark.slow  # its fixture runs four pipeline steps
def test_an_interrupted_step_must_be_finished_before_another_batch(base, capsys):
    tmp, batch, _ = base
    deploy = tmp / "pending"
    shutil.copytree(tmp / "base", deploy)
    (deploy / "journal.json").write_text(json.dumps(
        {"hash": "0" * 64, "file": "other.npz", "step": 3, "time": 0, "done": {}}))
    assert main(_args(tmp, deploy, batch)) == 2
    err = capsys.readouterr().err
    assert "other.npz" in err and "was interrupted" in err
