"""The model registry of ``continual retrain``: MLflow's, through its public client.

Each trained model is one MLflow run (its checkpoint and lineage as artifacts, its training and
gate numbers as metrics) and one version of a registered model, whose tags carry the lineage
(the hashes of the batches it trained on, the config's hash, the parent version) and the deploy
gate's decision. The aliases ``challenger`` and ``champion`` name the newest trained version and
the one serving. A deployment run holds the per-batch metrics (prequential accuracy, monitor).

Every write is idempotent, keyed by the step's batch hash, so a step killed midway and run
again leaves the registry as one uninterrupted step would: a run is found again by its tag, a
version by its run, and a metric is logged with the step's own timestamp (MLflow keeps one copy
of an identical metric).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

from continual.errors import ConfigError, missing_extra

STEP_KEY = "continual.step_key"


def _client_class() -> Any:
    try:
        from mlflow import MlflowClient
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its table-creation chatter
        logging.getLogger("alembic").setLevel(logging.WARNING)
    except ImportError:
        raise ConfigError(missing_extra("continual retrain's model registry", "mlflow",
                                        "production")) from None
    return MlflowClient


def _artifact_location(uri: str) -> str | None:
    """Where a new experiment's artifacts go: beside a SQLite database (the embedded one is
    ``DEPLOY/mlflow.db``: ``DEPLOY/artifacts``), as an MLflow server's artifact root would be;
    MLflow's own default for a database URI is ``./mlruns`` in whatever folder the step runs
    from. A server (``http://…``) decides for itself (None)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None


class Registry:
    """One registered model (and its MLflow experiment) of a deployment.

    Args:
        tracking_uri: where MLflow stores runs and versions (default: ``sqlite:///DEPLOY/
            mlflow.db``); artifacts of a SQLite registry go beside its database file.
        model_name: the registered model's name.
        deployment: the deployment folder (for the embedded defaults).
    """

    def __init__(self, tracking_uri: str | None, model_name: str, deployment: Path) -> None:
        client_class = _client_class()
        uri = tracking_uri or f"sqlite:///{deployment / 'mlflow.db'}"
        deployment.mkdir(parents=True, exist_ok=True)
        self.client = client_class(tracking_uri=uri, registry_uri=uri)
        self.name = model_name
        experiment = self.client.get_experiment_by_name(model_name)
        if experiment is None:
            location = _artifact_location(uri)
            self.experiment_id = self.client.create_experiment(model_name,
                                                               artifact_location=location)
        else:
            self.experiment_id = experiment.experiment_id
        if not self.client.search_registered_models(f"name = '{model_name}'"):
            self.client.create_registered_model(
                model_name, description="trained by continual retrain")

    def _run(self, key: str, name: str) -> str:
        """The run tagged ``key`` (created the first time), by id."""
        found = self.client.search_runs([self.experiment_id], f"tags.`{STEP_KEY}` = '{key}'",
                                        max_results=1)
        if found:
            return found[0].info.run_id
        return self.client.create_run(self.experiment_id, tags={STEP_KEY: key},
                                      run_name=name).info.run_id

    def deployment_run(self) -> str:
        """The run that holds the per-batch metrics of the deployment."""
        return self._run("deployment", "deployment")

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int,
                    timestamp: int) -> None:
        """Log at ``step``; an identical entry (same timestamp) already there is not repeated."""
        for key, value in metrics.items():
            self.client.log_metric(run_id, key, float(value), timestamp=timestamp, step=step)

    def register(self, key: str, checkpoint: Path, lineage: dict[str, Any],
                 metrics: dict[str, float], timestamp: int, say: Any = None) -> str:
        """The version for the model trained at step ``key`` (registered once); its number.

        The checkpoint and lineage are uploaded and the run finished *before* the version is
        created, so a version never points at incomplete artifacts.
        """
        run_id = self._run(key, f"step {lineage['step']}")
        versions = self.client.search_model_versions(f"name = '{self.name}' and "
                                                     f"run_id = '{run_id}'")
        if versions:
            return str(versions[0].version)
        if say:
            say("register:artifacts")
        self.client.log_artifact(run_id, str(checkpoint), "model")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "lineage.json"
            path.write_text(json.dumps(lineage, indent=1) + "\n")
            self.client.log_artifact(run_id, str(path), "model")
        self.log_metrics(run_id, metrics, int(lineage["step"]), timestamp)
        for k, v in _tags(lineage).items():
            self.client.set_tag(run_id, k, v)
        self.client.set_terminated(run_id)
        if say:
            say("register:version")
        run = self.client.get_run(run_id)
        version = self.client.create_model_version(
            self.name, f"{run.info.artifact_uri}/model", run_id, tags=_tags(lineage),
            description=f"trained at step {lineage['step']} on {len(lineage['batches'])} batches")
        return str(version.version)

    def record_decision(self, version: str, decision: dict[str, Any], timestamp: int) -> None:
        """The deploy gate's decision as the version's tags and its run's metrics: ``gate.*``
        on held-out data, ``shadow.*`` for the verdict on live batches after a shadow."""
        prefix = "shadow" if decision.get("stage") == "shadow" else "gate"
        tags = {f"{prefix}.deploy": str(decision["deploy"]).lower(),
                f"{prefix}.reason": decision["reason"], f"{prefix}.step": str(decision["step"])}
        for k, v in tags.items():
            self.client.set_model_version_tag(self.name, version, k, v)
        run_id = self.client.get_model_version(self.name, version).run_id
        numbers = {f"{prefix}/{k}": decision[k]
                   for k in ("champion_accuracy", "challenger_accuracy", "negative_flip_rate",
                             "n_holdout")
                   if decision[k] is not None and math.isfinite(decision[k])}
        self.log_metrics(run_id, numbers, int(decision["step"]), timestamp)

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.name, alias, version)

    def alias(self, alias: str) -> str | None:
        aliases = self.client.get_registered_model(self.name).aliases
        return str(aliases[alias]) if alias in aliases else None


def _tags(lineage: dict[str, Any]) -> dict[str, str]:
    return {"continual.step": str(lineage["step"]),
            "continual.batches": json.dumps(lineage["batches"]),
            "continual.parent_version": str(lineage["parent_version"] or ""),
            "continual.config_sha256": lineage["config_sha256"],
            "continual.policy": lineage["policy"]}
