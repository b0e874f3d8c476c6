"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard` (re-exports only)."""
