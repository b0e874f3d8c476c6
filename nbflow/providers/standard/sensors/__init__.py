"""Airflow 3's `airflow.providers.standard.sensors` (re-exports only; sensors come with a later issue)."""
