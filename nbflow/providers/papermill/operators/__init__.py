"""Airflow-compatible path: `nbflow.providers.papermill.operators` (re-exports only)."""
