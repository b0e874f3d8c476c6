"""Airflow-compatible path: `from nbflow.models.variable import Variable` (re-exports only)."""
from nbflow.secrets.variable import Variable as Variable
