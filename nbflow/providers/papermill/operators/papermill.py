"""Airflow-compatible path: `nbflow.providers.papermill.operators.papermill.PapermillOperator` (re-exports only)."""
from nbflow.operators.notebook import NotebookOperator as NotebookOperator
from nbflow.operators.notebook import PapermillOperator as PapermillOperator
