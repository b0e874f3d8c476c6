"""Airflow 3's `airflow.providers.standard.operators` (re-exports only)."""
