"""Airflow-compatible path: `nbflow.utils.trigger_rule` (re-exports only)."""
from nbflow.authoring.trigger_rule import TriggerRule as TriggerRule
