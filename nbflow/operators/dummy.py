"""Airflow-compatible path (Airflow 1 and 2): `nbflow.operators.dummy` (re-exports only)."""
from nbflow.operators.empty import DummyOperator as DummyOperator
from nbflow.operators.empty import EmptyOperator as EmptyOperator
