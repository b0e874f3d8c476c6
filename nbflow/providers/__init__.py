"""Airflow-compatible provider paths (`nbflow.providers.<name>...`): re-exports only."""
