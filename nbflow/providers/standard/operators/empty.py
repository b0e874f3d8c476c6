"""Airflow 3 path: `nbflow.providers.standard.operators.empty` (re-exports only)."""
from nbflow.operators.empty import EmptyOperator as EmptyOperator
