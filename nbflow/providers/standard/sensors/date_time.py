"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.sensors.date_time` (re-exports only)."""
from nbflow.sensors.date_time import DateTimeSensor as DateTimeSensor
from nbflow.sensors.date_time import DateTimeSensorAsync as DateTimeSensorAsync
