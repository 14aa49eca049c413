"""``continual retrain``: one call per batch file, read back through MLflow's client (issue #20).

The must-show: 12 batches with sudden label drift at batch 6, a threshold trigger and an ER
incremental update; the registry's versions, lineage, aliases and metrics; and the prequential
accuracies of ``continual simulate`` on the same stream and policy.
"""

from __future__ import annotations

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
        trigger:
          class_path: continual.retraining.AccuracyThreshold
          init_args: {min_accuracy: 0.7, max_drop: 0.1}
        update:
          class_path: continual.retraining.Incremental
          init_args:
            strategy: {class_path: continual.strategies.ExperienceReplay,
                       init_args: {buffer_size: 100}}
        deploy_gate: {min_gain: 0.0, max_negative_flip: 0.1}
    """)


def write_stream(root: Path) -> list[Path]:
    """12 batch files of 70 digits (labels remapped from batch 6 on), and the whole stream."""
    from continual.retraining import DriftingChunks

    stream = DriftingChunks(kind="sudden", concept="labels", n_steps=N_BATCHES,
                            chunk_size=CHUNK, drift_at=DRIFT_AT).build()
    assert stream.drift_points == [DRIFT_AT]
    paths = []
    for i, chunk in enumerate(stream.chunks):
        paths.append(root / f"batch-{i:02d}.npz")
        np.savez(paths[-1], x=chunk.x.numpy(), y=chunk.y.numpy())
    np.savez(root / "stream.npz", x=np.concatenate([c.x.numpy() for c in stream.chunks]),
             y=np.concatenate([c.y.numpy() for c in stream.chunks]))
    return paths


def retrain(tmp: Path, *files: str, deploy: str = "deploy") -> int:
    args = ["retrain", "--config", str(tmp / "policy.yaml"), "--deployment", str(tmp / deploy),
            "--n_classes", "10", "--quiet", "true"]
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
