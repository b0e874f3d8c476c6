"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.sensors.weekday` (re-exports only)."""
from nbflow.sensors.weekday import DayOfWeekSensor as DayOfWeekSensor
