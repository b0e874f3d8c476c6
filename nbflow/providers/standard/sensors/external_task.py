"""Airflow-compatible path (Airflow 3): `nbflow.providers.standard.sensors.external_task` (re-exports only)."""
from nbflow.sensors.external_task import ExternalTaskMarker as ExternalTaskMarker
from nbflow.sensors.external_task import ExternalTaskSensor as ExternalTaskSensor
