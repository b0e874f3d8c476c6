"""Clearing a task instance while its attempt runs, under the scheduler with the local executor.

The instance is never run twice at once: the running attempt is stopped first, and only then does
the instance run again, with the next try number. A cleared task also gets its retries back.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from nbflow.runtime import api
from nbflow.runtime.attempt import record_outcome
from nbflow.runtime.run_info import AttemptOutcome
from nbflow.store import session_scope
from nbflow.store import ti_state
from nbflow.store.keys import TIKey
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import lines, make_env, wait_for

LONG = """
import os, time
from pathlib import Path
from nbflow import DAG
from nbflow.operators.python import PythonOperator

HERE = Path({folder!r})

def long(ti):
    earlier = HERE / f"pid{{ti.try_number - 1}}"
    alive = False
    if earlier.exists():
        try:
            os.kill(int(earlier.read_text()), 0)
            alive = True
        except ProcessLookupError:
            pass
    (HERE / f"pid{{ti.try_number}}").write_text(str(os.getpid()))
    with open(HERE / "marks.txt", "a") as f:
        f.write(f"start {{ti.try_number}} earlier alive={{alive}}\\n")
    while not (HERE / "go").exists():
        time.sleep(0.05)
    with open(HERE / "marks.txt", "a") as f:
        f.write(f"end {{ti.try_number}}\\n")

with DAG("clearing", schedule=None):
    PythonOperator(task_id="long", python_callable=long) >> PythonOperator(task_id="after", python_callable=lambda: 1)
"""


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    monkeypatch.setenv("NBFLOW__SCHEDULER__TASK_HEARTBEAT_SEC", "0.2")
    return nbflow_env


def test_clearing_a_running_task_stops_its_attempt_before_running_it_again(env, tmp_path: Path) -> None:
    write_dag(env.dags, "clearing.py", LONG.format(folder=str(tmp_path)))
    marks = tmp_path / "marks.txt"
    environment = make_env()
    run = api.trigger_dag(environment, "clearing")
    scheduler = api.make_scheduler(environment, executor="local")
    thread = threading.Thread(target=lambda: scheduler.run(until_idle=True), daemon=True)
    thread.start()
    try:
        wait_for(lambda: "start 1 earlier alive=False" in lines(marks))
        api.clear_tasks(environment, "clearing", run.run_id, ["long"])
        wait_for(lambda: len(lines(marks)) == 2)
        (tmp_path / "go").touch()
        thread.join(timeout=60)
    finally:
        (tmp_path / "go").touch()
        scheduler.stop()
    assert lines(marks) == ["start 1 earlier alive=False", "start 2 earlier alive=False", "end 2"]
    assert api.get_run(environment, "clearing", run.run_id).state == "success"
    tries = {row.task_id: (row.state, row.try_number) for row in api.task_states(environment, "clearing", run.run_id)}
    assert tries == {"long": ("success", 2), "after": ("success", 1)}


def test_the_end_of_a_cleared_attempt_does_not_count(env) -> None:
    write_dag(env.dags, "short.py", """
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("short", schedule=None):
            EmptyOperator(task_id="only")
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "short")
    key = TIKey("short", "only", run.run_id, -1)
    dag = environment.get_dag("short")
    with session_scope(environment.sessions) as session:
        ti_state.set_task_state(session, key, "running", try_number=1)
    api.clear_tasks(environment, "short", run.run_id, ["only"])
    with session_scope(environment.sessions) as session:
        assert record_outcome(session, dag, key, AttemptOutcome(state="success", try_number=1, duration=0.1)) is None
    row = next(r for r in api.task_states(environment, "short", run.run_id))
    assert (row.state, row.try_number) == (None, 1)


def test_a_cleared_task_gets_its_retries_back(env, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    write_dag(env.dags, "flaky.py", f"""
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def flaky(ti):
            with open({str(marks)!r}, "a") as f:
                f.write(f"try {{ti.try_number}} of {{ti.max_tries + 1}}\\n")
            if ti.try_number < 4:
                raise RuntimeError("not yet")

        with DAG("flaky", schedule=None, default_args={{"retries": 1, "retry_delay": 0}}):
            PythonOperator(task_id="flaky", python_callable=flaky)
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "flaky")
    api.make_scheduler(environment, executor="local").run(until_idle=True)
    assert api.get_run(environment, "flaky", run.run_id).state == "failed"
    api.clear_tasks(environment, "flaky", run.run_id, ["flaky"])
    api.make_scheduler(environment, executor="local").run(until_idle=True)
    assert lines(marks) == ["try 1 of 2", "try 2 of 2", "try 3 of 4", "try 4 of 4"]
    assert api.get_run(environment, "flaky", run.run_id).state == "success"
