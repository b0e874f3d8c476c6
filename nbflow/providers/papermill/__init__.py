"""Airflow-compatible path of the papermill provider (re-exports only)."""
