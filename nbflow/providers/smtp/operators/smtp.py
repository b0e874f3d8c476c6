"""Airflow-compatible path (Airflow 3): `nbflow.providers.smtp.operators.smtp` (re-exports only)."""
from nbflow.operators.email import EmailOperator as EmailOperator
