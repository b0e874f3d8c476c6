"""Airflow-compatible path: `nbflow.utils.weight_rule` (re-exports only)."""
from nbflow.authoring.weight_rule import WeightRule as WeightRule
