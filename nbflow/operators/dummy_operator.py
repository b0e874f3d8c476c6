"""Airflow 1 path: `nbflow.operators.dummy_operator` (re-exports only)."""
from nbflow.operators.empty import DummyOperator as DummyOperator
