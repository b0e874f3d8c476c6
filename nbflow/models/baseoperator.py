"""Airflow-compatible path: `nbflow.models.baseoperator` (re-exports only)."""
from nbflow.authoring.baseoperator import BaseOperator as BaseOperator
from nbflow.authoring.dependencies import chain as chain
from nbflow.authoring.dependencies import cross_downstream as cross_downstream
