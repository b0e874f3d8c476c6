"""Airflow-compatible path: `nbflow.providers.papermill`, the papermill provider (re-exports only)."""
