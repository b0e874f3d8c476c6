"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.sensors` (re-exports only)."""
