"""Prefect flow: every new batch file through one ``continual retrain`` step, in order.

Retries are safe: the step is idempotent per batch and finishes an interrupted run.
"""

import subprocess
from pathlib import Path

from prefect import flow, task


@task(retries=3, retry_delay_seconds=60)
def retrain(batch: Path, config: str, deployment: str) -> None:
    subprocess.run(["continual", "retrain", "--config", config, "--deployment", deployment,
                    "--batch", str(batch), "--quiet", "true"], check=True)


@flow(name="continual-retrain")
def retrain_new_batches(incoming: str = "/data/incoming", config: str = "/data/policy.yaml",
                        deployment: str = "/data/deploy") -> None:
    for batch in sorted(Path(incoming).glob("*.npz")):  # processed ones are skipped by hash
        retrain(batch, config, deployment)


if __name__ == "__main__":
    retrain_new_batches.serve(name="hourly", cron="0 * * * *")
