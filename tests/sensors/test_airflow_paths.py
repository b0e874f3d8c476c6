"""Airflow's import paths for sensors and cross-DAG operators work after the airflow→nbflow rename."""
from __future__ import annotations

import subprocess
import sys

AIRFLOW_IMPORTS = """
from nbflow.sensors.base import BaseSensorOperator, PokeReturnValue
from nbflow.sensors.python import PythonSensor
from nbflow.sensors.filesystem import FileSensor
from nbflow.sensors.bash import BashSensor
from nbflow.sensors.time_delta import TimeDeltaSensor, TimeDeltaSensorAsync
from nbflow.sensors.time_sensor import TimeSensor, TimeSensorAsync
from nbflow.sensors.date_time import DateTimeSensor, DateTimeSensorAsync
from nbflow.sensors.weekday import DayOfWeekSensor
from nbflow.sensors.external_task import ExternalTaskMarker, ExternalTaskSensor
from nbflow.operators.trigger_dagrun import TriggerDagRunOperator
from nbflow.providers.standard.sensors.python import PythonSensor as P3
from nbflow.providers.standard.sensors.filesystem import FileSensor as F3
from nbflow.providers.standard.sensors.time import TimeSensor as T3
from nbflow.providers.standard.sensors.external_task import ExternalTaskSensor as E3
from nbflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator as R3
from nbflow.exceptions import NbflowSensorTimeout
from nbflow.decorators import task
assert P3 is PythonSensor and F3 is FileSensor and T3 is TimeSensor and E3 is ExternalTaskSensor
assert R3 is TriggerDagRunOperator and callable(task.sensor)
print("ok")
"""


def test_airflow_sensor_and_trigger_import_paths_resolve_in_a_fresh_interpreter() -> None:
    done = subprocess.run([sys.executable, "-c", AIRFLOW_IMPORTS], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
