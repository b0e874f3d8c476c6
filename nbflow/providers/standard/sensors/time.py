"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.sensors.time` (re-exports only)."""
from nbflow.sensors.time_sensor import TimeSensor as TimeSensor
from nbflow.sensors.time_sensor import TimeSensorAsync as TimeSensorAsync
