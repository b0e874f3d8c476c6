"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.sensors.bash` (re-exports only)."""
from nbflow.sensors.bash import BashSensor as BashSensor
