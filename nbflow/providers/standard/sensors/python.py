"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.sensors.python` (re-exports only)."""
from nbflow.sensors.python import PythonSensor as PythonSensor
