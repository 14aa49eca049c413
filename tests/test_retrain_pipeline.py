"""``continual retrain``: one call per batch file, read back through MLflow's client (issue #20).

The must-show: 12 batches with sudden label drift at batch 6, a threshold-or-ADWIN trigger and an ER
incremental update; the registry's versions, lineage, aliases and metrics; and the prequential
accuracies of ``continual simulate`` on the same stream and policy.
"""

from __future__ import annotations

import csv
import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from continual.cli import main

pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

pytestmark = pytest.mark.slow  # twelve pipeline runs and a simulation: about a minute

N_BATCHES, DRIFT_AT, CHUNK = 12, 6, 70

POLICY = textwrap.dedent("""\
    model:
      net:
        class_path: continual.nets.MLP
        init_args: {in_features: 64, hidden: [64], n_classes: 10}
    trainer: {max_epochs: 10}
    initial_chunks: 3
    policies:
      - name: threshold-er
        trigger:  # threshold or ADWIN, as the issue's must-show names it
          class_path: continual.retraining.AnyOf
          init_args:
            triggers:
              - {class_path: continual.retraining.AccuracyThreshold,
                 init_args: {min_accuracy: 0.7, max_drop: 0.1}}
              - {class_path: continual.retraining.DriftDetector, init_args: {detector: ADWIN}}
        update:
          class_path: continual.retraining.Incremental
          init_args:
            strategy: {class_path: continual.strategies.ExperienceReplay,
                       init_args: {buffer_size: 100}}
        deploy_gate: {min_gain: 0.0, max_negative_flip: 0.1}
    """)


def write_stream(root: Path, chunk_size: int = CHUNK, order: list[int] | None = None
                 ) -> list[Path]:
    """12 batch files of digits (labels remapped from batch 6 on, or the batches reordered by
    ``order``), and the whole stream."""
    from continual.retraining import DriftingChunks

    stream = DriftingChunks(kind="sudden", concept="labels", n_steps=N_BATCHES,
                            chunk_size=chunk_size, drift_at=DRIFT_AT).build()
    assert stream.drift_points == [DRIFT_AT]
    chunks = [stream.chunks[i] for i in order or range(N_BATCHES)]
    paths = []
    for i, chunk in enumerate(chunks):
        paths.append(root / f"batch-{i:02d}.npz")
        np.savez(paths[-1], x=chunk.x.numpy(), y=chunk.y.numpy())
    np.savez(root / "stream.npz", x=np.concatenate([c.x.numpy() for c in chunks]),
             y=np.concatenate([c.y.numpy() for c in chunks]))
    return paths


def retrain(tmp: Path, *files: str, deploy: str = "deploy", config: str = "policy.yaml",
            logger: str = "[csv]") -> int:
    args = ["retrain", "--config", str(tmp / config), "--deployment", str(tmp / deploy),
            "--n_classes", "10", "--quiet", "true", "--logger", logger]
    for f in files:
        args += ["--batch", f]
    return main(args)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrain")
    (tmp / "policy.yaml").write_text(POLICY)
    paths = write_stream(tmp)
    for path in paths:  # one pipeline run per arriving batch, as cron would call it
        assert retrain(tmp, str(path)) == 0
    return tmp, paths


def test_registry_holds_versions_lineage_aliases_and_metrics(deployed):
    tmp, paths = deployed
    state = json.loads((tmp / "deploy" / "state.json").read_text())
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'deploy' / 'mlflow.db'}")
    name = "continual-threshold-er"
    versions = sorted(client.search_model_versions(f"name = '{name}'"),
                      key=lambda v: int(v.version))
    trained = [s for s in state["steps"] if s["retrained"]]
    assert len(versions) == len(trained) >= 2  # the first model, and at least one after drift
    assert any(s["step"] >= DRIFT_AT for s in trained)
    hashes = [s["hash"] for s in state["steps"]]
    champion, parent = None, None
    for version, step in zip(versions, trained):
        tags = version.tags
        assert int(tags["continual.step"]) == step["step"]
        batches = json.loads(tags["continual.batches"])
        assert batches and set(batches) <= set(hashes[:step["step"] + 1])
        assert hashes[step["step"]] in batches  # trained on the batch that triggered it
        assert tags["continual.parent_version"] == (champion or "")
        assert version.status == "READY"
        files = {Path(a.path).name for a in client.list_artifacts(version.run_id, "model")}
        assert files == {f"{step['step']:06d}.pt", "lineage.json"}
        if parent is not None:  # the first model serves unchecked; later ones were gated
            assert tags["gate.deploy"] == str(step["deployed"]).lower()
            run = client.get_run(version.run_id)
            assert "gate/challenger_accuracy" in run.data.metrics
        if step["deployed"]:
            champion = str(version.version)
        parent = str(version.version)
    # The champion alias sits where the gate's recorded decisions put it; challenger: newest.
    model = client.get_registered_model(name)
    assert str(model.aliases["champion"]) == champion
    assert str(model.aliases["challenger"]) == str(versions[-1].version)
    decisions = state["decisions"]
    assert [d["step"] for d in decisions] == [s["step"] for s in trained]
    assert [d["deploy"] for d in decisions] == [s["deployed"] for s in trained]
    # Metrics per batch on the deployment run.
    experiment = client.get_run(versions[0].run_id).info.experiment_id
    run = client.search_runs([experiment], "tags.`continual.step_key` = 'deployment'")[0]
    history = client.get_metric_history(run.info.run_id, "prequential/accuracy")
    scored = [s for s in state["steps"] if s["accuracy"] is not None]
    assert sorted((m.step, m.value) for m in history) == \
        [(s["step"], s["accuracy"]) for s in scored]
    assert len(scored) == N_BATCHES - 3
    # The label-free monitor ran on every batch the champion served, into the same run.
    assert len(state["monitor"]) == N_BATCHES - 3
    assert client.get_metric_history(run.info.run_id, "monitor/confidence")
    assert "data:image/png;base64," in (tmp / "deploy" / "report.html").read_text()


def test_a_batch_processed_again_changes_nothing(deployed):
    tmp, paths = deployed
    before = (tmp / "deploy" / "state.json").read_bytes()
    assert retrain(tmp, str(paths[4]), str(paths[-1])) == 0
    assert (tmp / "deploy" / "state.json").read_bytes() == before


def test_prequential_accuracies_equal_simulate_on_the_same_stream_and_policy(deployed):
    tmp, _ = deployed
    config = tmp / "simulate.yaml"
    config.write_text(POLICY + textwrap.dedent(f"""\
        stream:
          class_path: continual.retraining.TimeOrdered
          init_args: {{path: {tmp / 'stream.npz'}, chunk_size: {CHUNK}, n_classes: 10}}
        """))
    assert main(["simulate", "--config", str(config), "--output", str(tmp / "sim"),
                 "--name", "same", "--quiet", "true", "--logger", "[]"]) == 0
    sim = json.loads((tmp / "sim" / "same" / "simulation.json").read_text())
    steps = sim["runs"]["threshold-er"]["steps"]
    state = json.loads((tmp / "deploy" / "state.json").read_text())
    assert [s["accuracy"] for s in steps] == [s["accuracy"] for s in state["steps"]]
    assert [(s["retrained"], s["deployed"]) for s in steps] == \
        [(s["retrained"], s["deployed"]) for s in state["steps"]]
    assert any(math.isfinite(a) for a in (s["accuracy"] or math.nan for s in steps))


def test_user_mistakes_end_in_one_line(deployed, tmp_path, capsys):
    tmp, paths = deployed
    assert main(["retrain", "--config", str(tmp / "policy.yaml"), "--deployment",
                 str(tmp / "deploy")]) == 2
    assert "no --batch or --inputs" in capsys.readouterr().err
    assert retrain(tmp, str(tmp_path / "missing.npz")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    other = tmp_path / "other.yaml"
    other.write_text(POLICY.replace("buffer_size: 100", "buffer_size: 50"))
    args = ["retrain", "--config", str(other), "--deployment", str(tmp / "deploy"),
            "--n_classes", "10", "--batch", str(paths[0])]
    assert main(args) == 2
    assert "config differs" in capsys.readouterr().err
    before = (tmp / "deploy" / "state.json").read_bytes()
    assert retrain(tmp, str(paths[0]), logger="[no_such_logger]") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no_such_logger" in err
    assert (tmp / "deploy" / "state.json").read_bytes() == before


# Shadow (A/B) evaluation: a lone label-remapped batch at step 4 that the old concept follows
# (its challenger wins on held-out data, loses live), then the new concept for good from step 7.
SHADOW_ORDER = [0, 1, 2, 3, 6, 4, 5, 7, 8, 9, 10, 11]
SHADOW_CHUNK = 100
SHADOW_POLICY = textwrap.dedent("""\
    model:
      net:
        class_path: continual.nets.MLP
        init_args: {in_features: 64, hidden: [64], n_classes: 10}
    trainer: {max_epochs: 30}
    initial_chunks: 3
    policies:
      - name: shadow
        trigger:
          class_path: continual.retraining.AccuracyThreshold
          init_args: {min_accuracy: 0.5, max_drop: null}
        update: {class_path: continual.retraining.SlidingWindow, init_args: {chunks: 1}}
        deploy_gate: {min_gain: 0.0, max_negative_flip: null, holdout_chunks: 1,
                      shadow_batches: 2}
    """)


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory):
    """``continual retrain`` once per batch with a shadow gate, logging to CSV and W&B."""
    tmp = tmp_path_factory.mktemp("shadow")
    (tmp / "shadow.yaml").write_text(SHADOW_POLICY)
    paths = write_stream(tmp, SHADOW_CHUNK, SHADOW_ORDER)
    for path in paths:
        assert retrain(tmp, str(path), deploy="deploy", config="shadow.yaml",
                       logger="[csv, wandb]") == 0
    assert retrain(tmp, str(paths[5]), deploy="deploy", config="shadow.yaml",
                   logger="[csv, wandb]") == 0  # a batch again: nothing new, nothing logged
    return tmp, json.loads((tmp / "deploy" / "state.json").read_text())


def test_shadow_promotions_and_accuracies_equal_simulate(shadowed):
    tmp, state = shadowed
    config = tmp / "simulate.yaml"
    config.write_text(SHADOW_POLICY + textwrap.dedent(f"""\
        stream:
          class_path: continual.retraining.TimeOrdered
          init_args: {{path: {tmp / 'stream.npz'}, chunk_size: {SHADOW_CHUNK}, n_classes: 10}}
        """))
    assert main(["simulate", "--config", str(config), "--output", str(tmp / "sim"),
                 "--name", "same", "--quiet", "true", "--logger", "[]"]) == 0
    run = json.loads((tmp / "sim" / "same" / "simulation.json").read_text())["runs"]["shadow"]
    fields = ("step", "accuracy", "retrained", "deployed", "skipped")
    assert [[s[f] for f in fields] for s in run["steps"]] == \
        [[s[f] for f in fields] for s in state["steps"]]
    def plain(decisions):  # NaN (the first model's champion) as simulation.json writes it
        return [{k: None if v != v else v for k, v in d.items()} for d in decisions]

    assert run["decisions"] == plain(state["decisions"])
    verdicts = [d for d in state["decisions"] if d["stage"] == "shadow"]
    assert [d["deploy"] for d in verdicts] == [False, True]  # one dropped, one promoted
    assert any(s["skipped"] == "challenger in shadow" for s in state["steps"])


def test_shadow_version_waits_as_challenger_and_is_promoted_only_by_its_verdict(shadowed):
    tmp, state = shadowed
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'deploy' / 'mlflow.db'}")
    name = "continual-shadow"
    versions = {int(v.tags["continual.step"]): v
                for v in client.search_model_versions(f"name = '{name}'")}
    verdicts = {d["step"]: d for d in state["decisions"] if d["stage"] == "shadow"}
    held_out = [d for d in state["decisions"] if d["stage"] == "holdout"][1:]
    assert len(held_out) == len(verdicts) == 2
    for gate, (step, verdict) in zip(held_out, sorted(verdicts.items())):
        tags = versions[gate["step"]].tags
        assert tags["gate.deploy"] == "true" and "in shadow" in tags["gate.reason"]
        assert tags["shadow.deploy"] == str(verdict["deploy"]).lower()
        assert tags["shadow.step"] == str(step) == str(gate["step"] + 2)
        metrics = client.get_run(versions[gate["step"]].run_id).data.metrics
        assert metrics["shadow/n_holdout"] == 2 * SHADOW_CHUNK  # live samples, not held out
    promoted = [d for d in held_out if verdicts[d["step"] + 2]["deploy"]]
    aliases = client.get_registered_model(name).aliases
    assert str(aliases["champion"]) == str(versions[promoted[-1]["step"]].version)
    assert state["champion"]["step"] == promoted[-1]["step"] and state["shadow"] is None


def test_csv_and_wandb_receive_each_committed_row_once(shadowed):
    from wandb_records import read_offline_run

    tmp, state = shadowed
    deploy = tmp / "deploy"
    expected = sorted((s["step"], s["accuracy"]) for s in state["steps"]
                      if s["accuracy"] is not None)
    with open(deploy / "logs" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("prequential/accuracy")]
    assert sorted((int(r["step"]), float(r["prequential/accuracy"])) for r in rows) == \
        pytest.approx(expected)
    offline = sorted(deploy.glob("wandb/offline-run-*"))
    run_id = (deploy / ".wandb_id").read_text().strip()
    assert offline and all(run_id in path.name for path in offline)  # one W&B run, resumed
    history = [h for path in offline for h in read_offline_run(path).history]
    logged = sorted((int(h["step"]), h["prequential/accuracy"]) for h in history
                    if "prequential/accuracy" in h)
    assert logged == pytest.approx(expected)
    deployed = sorted(int(h["step"]) for h in history if h.get("prequential/deployed") == 1)
    assert deployed == [s["step"] for s in state["steps"] if s["deployed"]]
    shadow_rows = sorted(int(h["step"]) for h in history if h.get("decision/shadow") == 1)
    assert shadow_rows == [d["step"] for d in state["decisions"] if d["stage"] == "shadow"]
    tables = sorted((json.loads(t.read_text()) for path in offline
                     for t in path.glob("files/media/table/decisions_*.table.json")),
                    key=lambda t: len(t["data"]))
    steps = tables[-1]["columns"].index("step")
    assert [row[steps] for row in tables[-1]["data"]] == [d["step"] for d in state["decisions"]]
