"""Airflow-compatible path: `nbflow.utils.edgemodifier` (re-exports only)."""
from nbflow.authoring.edges import EdgeModifier as EdgeModifier
from nbflow.authoring.edges import Label as Label
