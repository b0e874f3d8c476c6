"""Airflow-compatible path: `nbflow.models.dag` (re-exports only)."""
from nbflow.authoring.dag import DAG as DAG
from nbflow.authoring.dag import dag as dag
