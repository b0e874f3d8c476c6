"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.operators.bash` (re-exports only)."""
from nbflow.operators.bash import BashOperator as BashOperator
