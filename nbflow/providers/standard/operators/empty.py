"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.operators.empty` (re-exports only)."""
from nbflow.operators.empty import EmptyOperator as EmptyOperator
