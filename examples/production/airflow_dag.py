"""Airflow DAG: a sensor waits for the day's batch file, then one ``continual retrain`` step.

Retries are safe: the step is idempotent per batch and finishes an interrupted run.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.sensors.filesystem import FileSensor

BATCH = "/data/incoming/{{ ds }}.npz"

with DAG("continual_retrain", start_date=datetime(2026, 1, 1), schedule="@daily",
         catchup=True, max_active_runs=1,  # steps run in batch order, one at a time
         default_args={"retries": 3, "retry_delay": timedelta(minutes=5)}) as dag:
    arrived = FileSensor(task_id="batch_arrived", filepath=BATCH, poke_interval=300)
    retrain = BashOperator(
        task_id="retrain",
        bash_command=f"continual retrain --config /data/policy.yaml --deployment /data/deploy "
                     f"--batch {BATCH} --quiet true")
    arrived >> retrain
