"""Airflow 3 path: `nbflow.providers.standard.operators.branch` (re-exports only)."""
from nbflow.operators.branch import BaseBranchOperator as BaseBranchOperator
