"""Airflow-compatible path: `nbflow.models.param` (re-exports only)."""
from nbflow.authoring.params import Param as Param
from nbflow.authoring.params import ParamsDict as ParamsDict
