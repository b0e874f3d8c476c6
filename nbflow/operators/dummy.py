"""Airflow 1/2 path: `nbflow.operators.dummy` (re-exports only)."""
from nbflow.operators.empty import DummyOperator as DummyOperator
from nbflow.operators.empty import EmptyOperator as EmptyOperator
