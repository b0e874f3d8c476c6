"""Trigger rules, retries with backoff, callbacks and XComs under the real scheduler with the local executor.

Each test writes a DAG file under tmp_path, triggers it, and runs the scheduler (local executor: a warm
worker forking one process per attempt) against a real SQLite file until the run ends.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import in_thread, lines, make_env, run_scheduler_until_idle, wait_for


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


def states(environment: api.Environment, dag_id: str, run_id: str) -> dict[str, str | None]:
    return {row.task_id: row.state for row in api.task_states(environment, dag_id, run_id)}


# -- trigger rules that can start a join before every upstream task has ended ----------------------

EARLY_JOIN = """
import time
from pathlib import Path
from nbflow import DAG
from nbflow.operators.python import PythonOperator

MARKS, RELEASE = Path({marks!r}), Path({release!r})

def mark(what):
    with MARKS.open("a") as f:
        f.write(what + "\\n")

def fast():
    mark("fast")
    {fast_ends}

def slow():
    deadline = time.monotonic() + 60  # the test releases it once it has seen the join run
    while not RELEASE.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    mark("slow")

with DAG("early", schedule=None):
    join = PythonOperator(task_id="join", python_callable=lambda: mark("join"), trigger_rule={rule!r})
    [PythonOperator(task_id="fast", python_callable=fast), PythonOperator(task_id="slow", python_callable=slow)] >> join
"""


@pytest.mark.parametrize(("rule", "fast_ends", "fast_state"), [
    ("one_success", "pass", "success"),
    ("one_failed", "raise RuntimeError('fast fails')", "failed"),
    ("one_done", "raise RuntimeError('fast fails')", "failed"),
], ids=["one_success", "one_failed", "one_done"])
def test_join_with_an_early_trigger_rule_runs_while_the_slow_upstream_still_runs(
        env, tmp_path: Path, rule: str, fast_ends: str, fast_state: str) -> None:
    marks, release = tmp_path / "marks.txt", tmp_path / "release"
    write_dag(env.dags, "early.py", EARLY_JOIN.format(marks=str(marks), release=str(release), rule=rule,
                                                      fast_ends=fast_ends))
    environment = make_env()
    run = api.trigger_dag(environment, "early")
    scheduler = in_thread(lambda: run_scheduler_until_idle(environment))
    try:
        wait_for(lambda: "join" in lines(marks), timeout=30)
    finally:
        release.touch()
        scheduler.join(timeout=60)
    assert not scheduler.is_alive()
    assert lines(marks) == ["fast", "join", "slow"]
    assert states(environment, "early", run.run_id) == {"fast": fast_state, "slow": "success", "join": "success"}
    # Airflow's rule: only leaf tasks decide the run's state, and the join is the only leaf.
    assert api.get_run(environment, "early", run.run_id).state == "success"


def test_join_with_none_failed_min_one_success_runs_after_a_branch_skipped_the_other_path(env) -> None:
    write_dag(env.dags, "branchy.py", """
        from nbflow import DAG
        from nbflow.decorators import task
        from nbflow.operators.empty import EmptyOperator

        with DAG("branchy", schedule=None):
            @task.branch
            def choose():
                return "left"

            join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
            choose() >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")] >> join
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "branchy")
    run_scheduler_until_idle(environment)
    assert states(environment, "branchy", run.run_id) == {"choose": "success", "left": "success",
                                                          "right": "skipped", "join": "success"}
    assert api.get_run(environment, "branchy", run.run_id).state == "success"


def test_cleanup_with_all_done_runs_after_its_upstream_failed(env) -> None:
    write_dag(env.dags, "teardown.py", """
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        from nbflow.operators.python import PythonOperator

        def boom():
            raise RuntimeError("boom")

        with DAG("teardown", schedule=None):
            PythonOperator(task_id="boom", python_callable=boom) >> EmptyOperator(task_id="cleanup",
                                                                                 trigger_rule="all_done")
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "teardown")
    run_scheduler_until_idle(environment)
    assert states(environment, "teardown", run.run_id) == {"boom": "failed", "cleanup": "success"}
    # Airflow's rule: the run's state follows its leaves, and the leaf `cleanup` succeeded.
    assert api.get_run(environment, "teardown", run.run_id).state == "success"


# -- retries: exponential backoff capped by max_retry_delay -------------------------------------------

def test_retry_delay_grows_with_exponential_backoff_up_to_max_retry_delay(env, tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    # Each try records the next_retry_at its instance row holds when it starts: the time the
    # scheduler planned for it when the previous try failed (claiming does not change it).
    write_dag(env.dags, "backoff.py", f"""
        from datetime import timedelta
        from nbflow import DAG
        from nbflow.configuration import load_config
        from nbflow.operators.python import PythonOperator
        from nbflow.runtime import api

        def flaky(ti, run_id):
            environment = api.Environment.from_config(load_config())
            row = next(r for r in api.task_states(environment, "backoff", run_id) if r.task_id == "flaky")
            with open({str(seen)!r}, "a") as f:
                f.write(f"{{ti.try_number}} {{row.next_retry_at.isoformat() if row.next_retry_at else '-'}}\\n")
            if ti.try_number <= 2:
                raise RuntimeError(f"try {{ti.try_number}} fails")

        with DAG("backoff", schedule=None):
            PythonOperator(task_id="flaky", python_callable=flaky, retries=2, retry_delay=timedelta(seconds=1),
                           retry_exponential_backoff=True, max_retry_delay=timedelta(seconds=1.5))
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "backoff")
    run_scheduler_until_idle(environment)
    from datetime import datetime

    from nbflow.store import session_scope, ti_state
    from nbflow.store.keys import TIKey
    with session_scope(environment.sessions) as session:
        history = ti_state.get_task_history(session, TIKey("backoff", "flaky", run.run_id))
    assert [h.state for h in history] == ["up_for_retry", "up_for_retry", "success"]
    planned_at = {int(n): datetime.fromisoformat(at) for n, at in (line.split() for line in lines(seen)) if at != "-"}
    assert sorted(planned_at) == [2, 3]
    planned = [(planned_at[n] - history[n - 2].end_date).total_seconds() for n in (2, 3)]
    waited = [(history[n - 1].start_date - history[n - 2].end_date).total_seconds() for n in (2, 3)]
    # Backoff (Airflow's, whole seconds with jitter): the first retry waits 1 s, the second 2 or 3 s,
    # capped at 1.5 s. Each delay is computed a moment before the failed try's end_date is written,
    # so it reads a little shorter than the delay it came from: compared as orderings, not timings.
    assert 0 < planned[0] <= 1.0 < planned[1] <= 1.5
    assert all(history[n - 1].start_date >= planned_at[n] for n in (2, 3))
    assert waited[0] >= planned[0] and waited[1] >= planned[1]


# -- callbacks --------------------------------------------------------------------------------------

CALLBACKS = """
from datetime import timedelta
from nbflow import DAG
from nbflow.operators.python import PythonOperator

def note(what):
    def callback(context):
        ti = context.get("ti")
        where = f"{{what}} try {{ti.try_number}}" if ti is not None else f"{{what}}: {{context['reason']}}"
        with open({marks!r}, "a") as f:
            f.write(where + "\\n")
    return callback

def work(ti):
    if ti.try_number < {succeeds_on}:
        raise RuntimeError(f"try {{ti.try_number}} fails")

with DAG("calls", schedule=None, on_success_callback=note("dag success"),
         on_failure_callback=note("dag failure")):
    PythonOperator(task_id="work", python_callable=work, retries=1, retry_delay=timedelta(0),
                   on_execute_callback=note("execute"), on_success_callback=note("success"),
                   on_retry_callback=note("retry"), on_failure_callback=note("failure"))
"""


def test_callbacks_of_a_task_that_succeeds_on_its_retry_run_in_order_then_the_dag_success_callback(
        env, tmp_path: Path) -> None:
    marks = tmp_path / "callbacks.txt"
    write_dag(env.dags, "calls.py", CALLBACKS.format(marks=str(marks), succeeds_on=2))
    environment = make_env()
    run = api.trigger_dag(environment, "calls")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "calls", run.run_id).state == "success"
    assert lines(marks) == ["execute try 1", "retry try 1", "execute try 2", "success try 2", "dag success: success"]


def test_callbacks_of_a_task_that_fails_its_last_try_run_in_order_then_the_dag_failure_callback(
        env, tmp_path: Path) -> None:
    marks = tmp_path / "callbacks.txt"
    write_dag(env.dags, "calls.py", CALLBACKS.format(marks=str(marks), succeeds_on=99))
    environment = make_env()
    run = api.trigger_dag(environment, "calls")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "calls", run.run_id).state == "failed"
    assert lines(marks) == ["execute try 1", "retry try 1", "execute try 2", "failure try 2",
                            "dag failure: task work failed"]


# -- XComs between attempt processes ------------------------------------------------------------------

def test_xcoms_round_trip_datetimes_sets_tuples_and_a_dataclass_of_the_dag_file(env, tmp_path: Path) -> None:
    received = tmp_path / "received.txt"
    write_dag(env.dags, "shapes.py", f"""
        from dataclasses import dataclass
        from datetime import datetime, timezone
        from nbflow import DAG
        from nbflow.decorators import task

        @dataclass
        class Point:
            x: int
            y: int

        SENT = {{"when": datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=timezone.utc), "tags": {{"b", "a"}},
                 "pair": (1, "two"), "point": Point(3, 4), "nested": [(5, 6), {{7}}]}}

        with DAG("shapes", schedule=None):
            @task
            def send():
                return SENT

            @task
            def receive(value):
                kinds = {{k: type(v).__name__ for k, v in value.items()}}
                with open({str(received)!r}, "w") as f:
                    f.write(f"{{value == SENT}} {{sorted(kinds.items())}} {{type(value['nested'][0]).__name__}}\\n")

            receive(send())
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "shapes")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "shapes", run.run_id).state == "success"
    assert lines(received) == ["True [('nested', 'list'), ('pair', 'tuple'), ('point', 'Point'), "
                               "('tags', 'set'), ('when', 'datetime')] tuple"]


def test_xcom_pull_with_a_list_of_task_ids_returns_their_values_in_that_order(env, tmp_path: Path) -> None:
    pulled = tmp_path / "pulled.txt"
    write_dag(env.dags, "many.py", f"""
        from nbflow import DAG
        from nbflow.decorators import task

        with DAG("many", schedule=None):
            @task
            def a():
                return {{"from": "a"}}

            @task
            def b():
                return ("from", "b")

            @task
            def both(ti):
                with open({str(pulled)!r}, "w") as f:
                    f.write(repr(ti.xcom_pull(task_ids=["b", "a"])) + "\\n")
                    f.write(repr(ti.xcom_pull(task_ids=["a", "b"])) + "\\n")

            [a(), b()] >> both()
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "many")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "many", run.run_id).state == "success"
    assert lines(pulled) == ["[('from', 'b'), {'from': 'a'}]", "[{'from': 'a'}, ('from', 'b')]"]
