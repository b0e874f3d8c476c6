"""Sensors under a real `nbflow scheduler` (local executor): reschedule frees the slot, poke holds it, timeouts.

Orderings are proven from the timestamps the database recorded (attempt history, task instances),
never from the test's own clock.
"""
from __future__ import annotations

import pytest

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle
from tests.sensors.scheduler_run import running_scheduler

SENSOR_DAG = """
from datetime import datetime
from pathlib import Path
from nbflow import DAG
from nbflow.operators.python import PythonOperator
from nbflow.sensors.python import PythonSensor

FLAG = Path({flag!r})

def flag_is_there():
    return FLAG.exists()

def raise_the_flag():
    FLAG.write_text("up")

with DAG("waiting", schedule=None, start_date=datetime(2025, 1, 1)):
    PythonSensor(task_id="sense", python_callable=flag_is_there, poke_interval=0.5, timeout={timeout},
                 {options})
    PythonOperator(task_id="other", python_callable=raise_the_flag, priority_weight=0)
"""


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    monkeypatch.setenv("NBFLOW__CORE__PARALLELISM", "1")
    return nbflow_env


def sensor_dag(env, tmp_path, *, options: str, timeout: float = 120) -> None:
    write_dag(env.dags, "waiting.py", SENSOR_DAG.format(flag=str(tmp_path / "flag"), timeout=timeout,
                                                        options=options))


def test_a_reschedule_sensor_frees_its_slot_so_another_task_runs_between_its_pokes(env, tmp_path) -> None:
    sensor_dag(env, tmp_path, options='mode="reschedule", priority_weight=10')
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("waiting")
        assert state == "success"
        pokes = scheduler.history("waiting", run_id, "sense")
        other = scheduler.instance("waiting", run_id, "other")
        rescheduled = [p for p in pokes if p.state == "up_for_reschedule"]
        assert rescheduled, "the sensor first found no flag and gave its slot back"
        # With parallelism 1, `other` (which raises the flag) ran after the sensor's first poke ended
        # and before its last poke started: the slot was free in between.
        assert rescheduled[0].end_date <= other.start_date
        assert other.end_date <= pokes[-1].start_date
        assert {p.try_number for p in pokes} == {1}, "a reschedule does not use a try"
        assert scheduler.instance("waiting", run_id, "sense").try_number == 1


def test_a_poke_mode_sensor_holds_its_slot_until_it_times_out(env, tmp_path) -> None:
    sensor_dag(env, tmp_path, options='mode="poke", priority_weight=10', timeout=1.5)
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("waiting")
        sense = scheduler.instance("waiting", run_id, "sense")
        other = scheduler.instance("waiting", run_id, "other")
        assert sense.state == "failed" and sense.try_number == 1
        assert sense.end_date <= other.start_date, "the other task waited for the poking sensor's slot"
        assert "NbflowSensorTimeout" in scheduler.log("waiting", run_id, "sense")
        assert state == "failed"


def test_a_reschedule_sensor_times_out_counting_from_its_first_poke(env, tmp_path) -> None:
    sensor_dag(env, tmp_path, options='mode="reschedule", retries=2', timeout=1.5)
    (tmp_path / "never").mkdir()
    write_dag(env.dags, "waiting.py", (env.dags / "waiting.py").read_text().replace(
        "def raise_the_flag():\n    FLAG.write_text(\"up\")", "def raise_the_flag():\n    pass"))
    with running_scheduler(env) as scheduler:
        run_id, _ = scheduler.run("waiting")
        sense = scheduler.instance("waiting", run_id, "sense")
        pokes = scheduler.history("waiting", run_id, "sense")
        assert sense.state == "failed", "a sensor timeout fails at once, whatever its retries"
        assert pokes[0].state == "up_for_reschedule" and pokes[-1].state == "failed"
        assert {p.try_number for p in pokes} == {1}
        assert (pokes[-1].end_date - pokes[0].start_date).total_seconds() >= 1.5
        log = scheduler.log("waiting", run_id, "sense", 1)
        assert "timed out" in log and "since its first poke" in log


def test_soft_fail_skips_a_sensor_that_times_out(env, tmp_path) -> None:
    sensor_dag(env, tmp_path, options='mode="reschedule", soft_fail=True', timeout=1.0)
    write_dag(env.dags, "waiting.py", (env.dags / "waiting.py").read_text().replace(
        "def raise_the_flag():\n    FLAG.write_text(\"up\")", "def raise_the_flag():\n    pass"))
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("waiting")
        assert scheduler.states("waiting", run_id)["sense"] == "skipped"
        assert state == "success"


def test_a_deferrable_sensor_runs_in_reschedule_mode(env, tmp_path) -> None:
    sensor_dag(env, tmp_path, options="deferrable=True, priority_weight=10")
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("waiting")
        pokes = scheduler.history("waiting", run_id, "sense")
        other = scheduler.instance("waiting", run_id, "other")
        assert state == "success"
        assert pokes[0].state == "up_for_reschedule" and pokes[0].end_date <= other.start_date


def test_under_the_sequential_executor_a_rescheduled_sensor_lets_the_other_task_run(env, tmp_path) -> None:
    sensor_dag(env, tmp_path, options='mode="reschedule", priority_weight=10')
    environment = make_env()
    run_id = api.trigger_dag(environment, "waiting").run_id
    run_scheduler_until_idle(environment, executor="sequential")
    pokes = {p.state for p in api_history(environment, run_id)}
    other = next(r for r in api.task_states(environment, "waiting", run_id) if r.task_id == "other")
    assert api.get_run(environment, "waiting", run_id).state == "success"
    assert "up_for_reschedule" in pokes and other.state == "success"


def api_history(environment, run_id: str):
    from nbflow.store import session_scope, ti_state
    from nbflow.store.keys import TIKey
    with session_scope(environment.readers) as session:
        return ti_state.get_task_history(session, TIKey("waiting", "sense", run_id))
