"""The mini-scheduler: an ending attempt queues the downstream tasks it made ready (real SQLite file)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from nbflow.authoring.dag import DAG
from nbflow.authoring.timetables import DataInterval
from nbflow.operators.empty import EmptyOperator
from nbflow.runtime.dagruns import create_run
from nbflow.runtime.followups import queue_ready_downstream
from nbflow.store import session_scope
from nbflow.store import task_instances as ti_rows
from nbflow.store import ti_state
from nbflow.store.engine import make_engine, make_session_factory
from nbflow.store.keys import TIKey
from nbflow.store.migrate import init_db

WHEN = datetime(2025, 1, 1, tzinfo=timezone.utc)


def fan_in(rule: str) -> DAG:
    with DAG("fan", schedule=None) as dag:
        join = EmptyOperator(task_id="join", trigger_rule=rule)
        [EmptyOperator(task_id=name) for name in ("a", "b", "c")] >> join
    return dag


@pytest.fixture
def sessions(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'nbflow.db'}"
    init_db(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def start_run(sessions, dag: DAG, states: dict[str, str]) -> str:
    with session_scope(sessions) as session:
        run = create_run(session, dag, run_type="manual", logical_date=WHEN, interval=DataInterval(WHEN, WHEN))
        for task_id, state in states.items():
            ti_state.set_task_state(session, TIKey(dag.dag_id, task_id, run.run_id, -1), state)
    return run.run_id


def join_state(sessions, run_id: str) -> str | None:
    with session_scope(sessions) as session:
        return {row[0]: row[2] for row in ti_rows.get_task_states(session, "fan", run_id)}["join"]


def ending(sessions, dag: DAG, run_id: str, task_id: str, **kwargs):
    with session_scope(sessions) as session:
        return queue_ready_downstream(session, dag, TIKey("fan", task_id, run_id, -1), job_id=None,
                                      executor="local", **kwargs)


def test_the_last_upstream_to_end_queues_the_join(sessions) -> None:
    dag = fan_in("all_success")
    run_id = start_run(sessions, dag, {"a": "success", "b": "success", "c": "success"})
    assert [w.task_id for w in ending(sessions, dag, run_id, "c")] == ["join"]
    assert join_state(sessions, run_id) == "queued"


def test_a_join_waits_while_an_upstream_task_runs(sessions) -> None:
    dag = fan_in("all_success")
    run_id = start_run(sessions, dag, {"a": "success", "b": "success", "c": "running"})
    assert ending(sessions, dag, run_id, "a") == []
    assert join_state(sessions, run_id) is None


def test_a_join_with_an_upstream_the_caller_still_holds_is_left_to_the_scheduler(sessions) -> None:
    # the caller's word is taken without reading the upstream states (here they say otherwise)
    dag = fan_in("all_done")
    run_id = start_run(sessions, dag, {"a": "success", "b": "success", "c": "success"})
    assert ending(sessions, dag, run_id, "a", in_flight=frozenset({("fan", run_id, "c")})) == []
    assert join_state(sessions, run_id) is None


def test_a_join_that_runs_on_one_success_is_queued_while_others_are_in_flight(sessions) -> None:
    dag = fan_in("one_success")
    run_id = start_run(sessions, dag, {"a": "success", "b": "running", "c": "queued"})
    in_flight = frozenset({("fan", run_id, "b"), ("fan", run_id, "c")})
    assert [w.task_id for w in ending(sessions, dag, run_id, "a", in_flight=in_flight)] == ["join"]
    assert join_state(sessions, run_id) == "queued"


def test_attempts_of_another_run_do_not_hold_a_join_back(sessions) -> None:
    dag = fan_in("all_success")
    run_id = start_run(sessions, dag, {"a": "success", "b": "success", "c": "success"})
    in_flight = frozenset({("fan", "some_other_run", "b")})
    assert [w.task_id for w in ending(sessions, dag, run_id, "a", in_flight=in_flight)] == ["join"]


def test_max_active_tasks_counts_the_attempts_of_this_run_only(sessions) -> None:
    with DAG("fan", schedule=None, max_active_tasks=1) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    with session_scope(sessions) as session:
        for run_id in ("busy", "ending"):
            create_run(session, dag, run_type="manual", logical_date=WHEN, interval=DataInterval(WHEN, WHEN),
                       run_id=run_id)
        ti_state.set_task_state(session, TIKey("fan", "a", "busy", -1), "running")
        ti_state.set_task_state(session, TIKey("fan", "a", "ending", -1), "success")
    assert [w.task_id for w in ending(sessions, dag, "ending", "a")] == ["b"]
