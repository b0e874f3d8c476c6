"""Airflow-compatible path of the papermill provider's operators (re-exports only)."""
