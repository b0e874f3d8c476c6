"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.operators.python` (re-exports only)."""
from nbflow.operators.python import BranchPythonOperator as BranchPythonOperator
from nbflow.operators.python import ExternalPythonOperator as ExternalPythonOperator
from nbflow.operators.python import PythonOperator as PythonOperator
from nbflow.operators.python import PythonVirtualenvOperator as PythonVirtualenvOperator
from nbflow.operators.python import ShortCircuitOperator as ShortCircuitOperator
from nbflow.operators.python import get_current_context as get_current_context
