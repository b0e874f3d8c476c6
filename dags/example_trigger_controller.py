"""A controller DAG triggers a target DAG with conf and waits for it (Airflow's example_trigger_controller_dag).

`trigger_target` starts a run of `example_trigger_target` whose conf carries the controller's date
(templated) and a message; with `wait_for_completion` the task ends only once that run succeeded
(it fails if the target fails). Under `nbflow dags test` the target runs at once, in the same process. After the rename
airflow→nbflow this is an Airflow DAG file.
"""
from __future__ import annotations

from datetime import datetime

from nbflow import DAG
from nbflow.operators.trigger_dagrun import TriggerDagRunOperator

with DAG(
    dag_id="example_trigger_controller",
    description="triggers example_trigger_target with conf and waits for it to finish",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "cross-dag"],
) as dag:
    TriggerDagRunOperator(
        task_id="trigger_target",
        trigger_dag_id="example_trigger_target",
        trigger_run_id="triggered_by_{{ run_id }}",
        conf={"day": "{{ ds }}", "message": "hello from the controller"},
        wait_for_completion=True,
        poke_interval=1,
    )
