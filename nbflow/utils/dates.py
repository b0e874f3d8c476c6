"""Airflow-compatible path: `nbflow.utils.dates` (re-exports only)."""
from nbflow.utils.timezone import utcnow as utcnow
