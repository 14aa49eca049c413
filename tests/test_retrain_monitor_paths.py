"""``continual retrain`` paths the main pipeline test does not take: unlabelled ``--inputs``
alone, and retraining triggered by the label-free monitor only (issue #20)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from continual.cli import main
from continual.retraining import DriftingChunks

pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

pytestmark = pytest.mark.slow  # a dozen pipeline runs

DRIFT_AT = 8
# No trigger of its own (Never): every retrain after the first model is the monitor's.
POLICY = textwrap.dedent("""\
    model:
      net:
        class_path: continual.nets.MLP
        init_args: {in_features: 64, hidden: [64], n_classes: 10}
    trainer: {max_epochs: 10}
    initial_chunks: 3
    policies:
      - name: monitor-only
        update:
          class_path: continual.retraining.Incremental
    """)


@pytest.fixture(scope="module")
def rotating(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rotating")
    (tmp / "policy.yaml").write_text(POLICY)
    stream = DriftingChunks(kind="incremental", concept="rotation", n_steps=12, chunk_size=100,
                            drift_at=DRIFT_AT, degrees_per_step=15, seed=0).build()
    paths = []
    for i, chunk in enumerate(stream.chunks):
        paths.append(tmp / f"batch-{i:02d}.npz")
        np.savez(paths[-1], x=chunk.x.numpy(), y=chunk.y.numpy())
    return tmp, paths


def retrain(tmp: Path, deploy: str, *args: str) -> int:
    return main(["retrain", "--config", str(tmp / "policy.yaml"), "--deployment",
                 str(tmp / deploy), "--quiet", "true", *args])


def state(tmp: Path, deploy: str) -> dict:
    return json.loads((tmp / deploy / "state.json").read_text())


def test_monitor_alarms_alone_retrain_from_the_drift_and_never_before(rotating):
    tmp, paths = rotating
    for path in paths:
        assert retrain(tmp, "mon", "--batch", str(path), "--monitor.trigger", "true") == 0
    steps = state(tmp, "mon")["steps"]
    retrained = [s["step"] for s in steps if s["retrained"]]
    assert retrained[0] == 2  # the first model, after the initial batches
    later = retrained[1:]
    assert later and all(s >= DRIFT_AT for s in later)  # no retrain on the stable prefix
    assert later[0] <= DRIFT_AT + 2  # and soon after the rotation starts
    # the same batches with the monitor watching but not allowed to trigger: no retrain
    for path in paths:
        assert retrain(tmp, "watch", "--batch", str(path)) == 0
    assert [s["step"] for s in state(tmp, "watch")["steps"] if s["retrained"]] == [2]


def test_unlabelled_inputs_alone_are_monitored_once_and_logged(rotating):
    tmp, paths = rotating
    unlabelled = tmp / "unlabelled.npz"
    np.savez(unlabelled, x=np.load(paths[DRIFT_AT + 2])["x"])  # rotated inputs, no labels
    assert retrain(tmp, "inputs", "--inputs", str(unlabelled)) == 0  # no model yet: nothing
    assert not (tmp / "inputs" / "state.json").exists()  # nor marked as seen
    for path in paths[:4]:
        assert retrain(tmp, "inputs", "--batch", str(path)) == 0
    before = state(tmp, "inputs")
    assert retrain(tmp, "inputs", "--inputs", str(unlabelled)) == 0
    after = state(tmp, "inputs")
    assert after["steps"] == before["steps"]  # no labels: no step, no retrain
    [row] = after["monitor"][len(before["monitor"]):]
    assert row["step"] == 4 and row["drift"]  # rotated 30°: seen without a label
    assert retrain(tmp, "inputs", "--inputs", str(unlabelled)) == 0  # the same file again
    assert state(tmp, "inputs")["monitor"] == after["monitor"]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'inputs' / 'mlflow.db'}")
    history = [m for run in client.search_runs(client.search_experiments()[0].experiment_id)
               for m in client.get_metric_history(run.info.run_id, "monitor/alarm")]
    assert any(m.value == 1.0 for m in history)
    run_ids = [r.info.run_id for r in client.search_runs(client.search_experiments()[0]
                                                         .experiment_id)]
    logged = {k for run_id in run_ids for k in client.get_run(run_id).data.metrics}
    assert {"monitor/p_value", "monitor/feature_p_value", "monitor/features_drifted",
            "monitor/confidence"} <= logged


def test_a_registry_elsewhere_holds_the_versions_and_the_champion(rotating, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)  # where MLflow would put ./mlruns
    tmp, paths = rotating
    uri = f"sqlite:///{tmp_path / 'team' / 'registry.db'}"
    (tmp_path / "team").mkdir()
    for path in paths[:4]:
        assert retrain(tmp, "remote", "--batch", str(path), "--registry.tracking_uri", uri,
                       "--registry.model_name", "digits") == 0
    assert not (tmp / "remote" / "mlflow.db").exists()  # not the embedded default
    assert list((tmp_path / "team" / "artifacts").rglob("*.pt"))  # beside the database
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("digits", "champion")
    assert str(champion.version) == "1"
    assert champion.tags["continual.step"] == "2"  # trained on the three initial batches
    assert len(json.loads(champion.tags["continual.batches"])) == 3
    assert not (tmp_path / "mlruns").exists()
