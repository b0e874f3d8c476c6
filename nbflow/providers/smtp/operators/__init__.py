"""Airflow-compatible path (Airflow 3): `nbflow.providers.smtp.operators` (re-exports only)."""
