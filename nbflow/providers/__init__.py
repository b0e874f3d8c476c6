"""Airflow-compatible path: the provider packages `nbflow.providers.<name>...` (re-exports only)."""
