"""Airflow-compatible path: `from nbflow.decorators import task, dag, task_group` (re-exports only).

Importing the operator modules registers `@task.bash`, `@task.branch`, ... with the decorator registry.
"""
import nbflow.operators.bash  # noqa: F401 - registers @task.bash
import nbflow.operators.python  # noqa: F401 - registers @task, @task.branch, @task.short_circuit
import nbflow.sensors.python  # noqa: F401 - registers @task.sensor
from nbflow.authoring.dag import dag as dag
from nbflow.authoring.taskflow import task as task
from nbflow.authoring.taskgroup import task_group as task_group
