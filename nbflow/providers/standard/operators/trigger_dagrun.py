"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.operators.trigger_dagrun` (re-exports only)."""
from nbflow.operators.trigger_dagrun import TriggerDagRunOperator as TriggerDagRunOperator
