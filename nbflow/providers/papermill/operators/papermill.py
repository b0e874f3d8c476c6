"""Airflow-compatible path: `from nbflow.providers.papermill.operators.papermill import PapermillOperator`."""
from nbflow.operators.notebook import NotebookOperator as NotebookOperator
from nbflow.operators.notebook import PapermillOperator as PapermillOperator
