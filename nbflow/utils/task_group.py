"""Airflow-compatible path: `nbflow.utils.task_group` (re-exports only)."""
from nbflow.authoring.taskgroup import TaskGroup as TaskGroup
from nbflow.authoring.taskgroup import task_group as task_group
