"""Airflow-compatible path (Airflow 3): `nbflow.providers.smtp.notifications` (re-exports only)."""
