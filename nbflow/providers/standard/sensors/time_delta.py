"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.sensors.time_delta` (re-exports only)."""
from nbflow.sensors.time_delta import TimeDeltaSensor as TimeDeltaSensor
from nbflow.sensors.time_delta import TimeDeltaSensorAsync as TimeDeltaSensorAsync
