"""Airflow-compatible path (Airflow 3): `nbflow.providers.smtp` (re-exports only)."""
