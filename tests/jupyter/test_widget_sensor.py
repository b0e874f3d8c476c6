"""DagWidget shows a sensor waiting in reschedule mode: its colour, and when it pokes next."""
from __future__ import annotations

from nbflow.graph import STATE_COLORS
from nbflow.runtime import api
from tests.conftest import write_dag
from tests.jupyter.conftest import node_fill
from tests.sensors.scheduler_run import running_scheduler
from tests.runtime.scheduler_helpers import wait_for

WAITING_DAG = """
from datetime import datetime
from nbflow import DAG
from nbflow.sensors.python import PythonSensor

with DAG("waiting", schedule=None, start_date=datetime(2025, 1, 1)):
    PythonSensor(task_id="sense", python_callable=lambda: False, mode="reschedule", poke_interval=600)
"""


def test_the_widget_shows_a_rescheduled_sensor_with_its_colour_and_next_poke_time(nbflow_env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    write_dag(nbflow_env.dags, "waiting.py", WAITING_DAG)
    with running_scheduler(nbflow_env) as scheduler:
        run_id = scheduler.trigger("waiting")
        sense = wait_for(lambda: next((row for row in api.task_states(scheduler.env, "waiting", run_id)
                                       if row.state == "up_for_reschedule"), None))
        from nbflow.jupyter.widgets import DagWidget
        widget = DagWidget("waiting", env=scheduler.env, refresh=False)
        row = next(row for row in widget.tasks if row["task_id"] == "sense")
        assert widget.states == {"sense": "up_for_reschedule"}
        assert row["next_at"] == f"next poke at {sense.next_retry_at.isoformat()}"
        assert f"(next poke at {sense.next_retry_at:%H:%M:%S})" in row["label"]
        assert node_fill(widget.static_html(), "sense") == STATE_COLORS["up_for_reschedule"]
        widget.close()
