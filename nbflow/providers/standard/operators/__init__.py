"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.operators` (re-exports only)."""
