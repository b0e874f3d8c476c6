"""Airflow-compatible path: `nbflow.utils.dates` (re-exports only)."""
from nbflow.utils.timezone import days_ago as days_ago
from nbflow.utils.timezone import utcnow as utcnow
