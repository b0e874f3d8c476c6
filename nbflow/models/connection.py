"""Airflow-compatible path: `from nbflow.models.connection import Connection` (re-exports only)."""
from nbflow.secrets.connection import Connection as Connection
