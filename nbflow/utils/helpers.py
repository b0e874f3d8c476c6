"""Airflow-compatible path: `nbflow.utils.helpers` (re-exports only)."""
from nbflow.authoring.dependencies import chain as chain
from nbflow.authoring.dependencies import cross_downstream as cross_downstream
