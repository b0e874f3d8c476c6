"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.operators.latest_only` (re-exports only)."""
from nbflow.operators.latest_only import LatestOnlyOperator as LatestOnlyOperator
