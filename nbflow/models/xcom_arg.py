"""Airflow-compatible path: `nbflow.models.xcom_arg` (re-exports only)."""
from nbflow.authoring.xcom_arg import XComArg as XComArg
