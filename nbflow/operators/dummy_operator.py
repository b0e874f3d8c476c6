"""Airflow-compatible path (Airflow 1): `nbflow.operators.dummy_operator` (re-exports only)."""
from nbflow.operators.empty import DummyOperator as DummyOperator
