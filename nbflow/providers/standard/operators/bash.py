"""Airflow 3 path: `nbflow.providers.standard.operators.bash` (re-exports only)."""
from nbflow.operators.bash import BashOperator as BashOperator
