"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.operators.branch` (re-exports only)."""
from nbflow.operators.branch import BaseBranchOperator as BaseBranchOperator
