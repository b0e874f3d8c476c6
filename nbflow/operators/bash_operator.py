"""Airflow-compatible path (Airflow 1): `nbflow.operators.bash_operator` (re-exports only)."""
from nbflow.operators.bash import BashOperator as BashOperator
