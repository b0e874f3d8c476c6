"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.sensors.filesystem` (re-exports only)."""
from nbflow.sensors.filesystem import FileSensor as FileSensor
