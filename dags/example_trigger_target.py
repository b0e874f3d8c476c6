"""The target of example_trigger_controller: reads the conf it was triggered with (Airflow's
example_trigger_target_dag). With no schedule it runs only when triggered; run on its own it uses
its params' defaults."""
from __future__ import annotations

from datetime import datetime

from nbflow import DAG
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator


def read_conf(**context):
    """Return what the controller sent (its params fill in what a trigger left out)."""
    params = context["params"]
    print(f"message from the controller for {params['day']}: {params['message']}")
    return {"day": params["day"], "message": params["message"]}


with DAG(
    dag_id="example_trigger_target",
    description="run by example_trigger_controller with conf",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    params={"day": "unknown", "message": "run on its own"},
    tags=["example", "cross-dag"],
) as dag:
    show = PythonOperator(task_id="read_conf", python_callable=read_conf)
    echo = BashOperator(task_id="echo_conf", bash_command='echo "{{ dag_run.conf.get(\'message\', \'none\') }}"')
    show >> echo
