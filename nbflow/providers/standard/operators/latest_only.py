"""Airflow 3 path: `nbflow.providers.standard.operators.latest_only` (re-exports only)."""
from nbflow.operators.latest_only import LatestOnlyOperator as LatestOnlyOperator
