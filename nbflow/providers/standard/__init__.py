"""Airflow 3's `airflow.providers.standard` paths as `nbflow.providers.standard` (re-exports only)."""
