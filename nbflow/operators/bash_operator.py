"""Airflow 1 path: `nbflow.operators.bash_operator` (re-exports only)."""
from nbflow.operators.bash import BashOperator as BashOperator
