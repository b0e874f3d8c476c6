"""Airflow-compatible path (Airflow 1): `nbflow.operators.python_operator` (re-exports only)."""
from nbflow.operators.python import BranchPythonOperator as BranchPythonOperator
from nbflow.operators.python import PythonOperator as PythonOperator
from nbflow.operators.python import ShortCircuitOperator as ShortCircuitOperator
