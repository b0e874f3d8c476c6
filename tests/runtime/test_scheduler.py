"""The scheduler with real processes and a real SQLite database file."""
from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import (
    in_thread,
    lines,
    make_env,
    run_scheduler_until_idle,
    start_scheduler_process,
    wait_for,
)

CHAIN = """
from pathlib import Path
from nbflow import DAG
from nbflow.decorators import task

MARKS = Path({marks!r})

with DAG("chain", schedule=None, start_date=None, default_args={{"retries": {retries}, "retry_delay": 0}}):
    @task
    def first():
        with MARKS.open("a") as f:
            f.write("first\\n")
        return 1

    @task
    def second(x):
        import os, signal, time
        with MARKS.open("a") as f:
            f.write("second\\n")
        {second_body}
        return x + 1

    @task
    def third(x):
        with MARKS.open("a") as f:
            f.write("third\\n")
        return x + 1

    third(second(first()))
"""


def chain_dag(dags: Path, marks: Path, *, retries: int = 0, second_body: str = "pass") -> None:
    write_dag(dags, "chain.py", CHAIN.format(marks=str(marks), retries=retries, second_body=second_body))


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


def scheduler_jobs(environment: api.Environment, state: str) -> list[int]:
    from sqlalchemy import text
    with environment.sessions() as session:
        return list(session.scalars(text("SELECT id FROM job WHERE job_type = 'scheduler' AND state = :s"),
                                    {"s": state}))


def states(environment: api.Environment, dag_id: str, run_id: str) -> dict[str, str | None]:
    return {row.task_id: row.state for row in api.task_states(environment, dag_id, run_id)}


@pytest.mark.parametrize("executor", ["local", "sequential"])
def test_triggered_run_completes_with_xcoms(env, tmp_path: Path, executor: str) -> None:
    marks = tmp_path / "marks.txt"
    chain_dag(env.dags, marks)
    environment = make_env()
    run = api.trigger_dag(environment, "chain")
    run_scheduler_until_idle(environment, executor=executor)
    assert api.get_run(environment, "chain", run.run_id).state == "success"
    assert states(environment, "chain", run.run_id) == {"first": "success", "second": "success",
                                                        "third": "success"}
    assert lines(marks) == ["first", "second", "third"]
    log = api.log_path(environment, "chain", run.run_id, "third", None).read_text()
    assert "Returned value was: 3" in log


def test_killed_attempt_process_is_retried(env, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    body = ("if len(MARKS.read_text().splitlines()) == 2:\n"
            "            os.kill(os.getpid(), signal.SIGKILL)")
    chain_dag(env.dags, marks, retries=1, second_body=body)
    environment = make_env()
    run = api.trigger_dag(environment, "chain")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "chain", run.run_id).state == "success"
    second = next(r for r in api.task_states(environment, "chain", run.run_id) if r.task_id == "second")
    assert second.state == "success" and second.try_number == 2
    assert lines(marks) == ["first", "second", "second", "third"]


def test_killed_attempt_without_retries_fails_the_run_naming_the_task(env, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    chain_dag(env.dags, marks, second_body="os._exit(7)")
    environment = make_env()
    run = api.trigger_dag(environment, "chain")
    run_scheduler_until_idle(environment)
    finished = api.get_run(environment, "chain", run.run_id)
    assert finished.state == "failed"
    assert finished.failed_task == "second"
    assert states(environment, "chain", run.run_id)["third"] == "upstream_failed"


def test_scheduler_killed_mid_run_resumes_without_running_a_task_twice(env, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    started = tmp_path / "second-started"
    body = (f"Path({str(started)!r}).touch()\n"
            "        time.sleep(1.5)")
    chain_dag(env.dags, marks, second_body=body)
    environment = make_env()
    run = api.trigger_dag(environment, "chain")
    proc = start_scheduler_process()
    try:
        wait_for(started.exists)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "chain", run.run_id).state == "success"
    assert lines(marks) == ["first", "second", "third"]


def test_sigterm_stops_the_scheduler_gracefully(env, tmp_path: Path) -> None:
    chain_dag(env.dags, tmp_path / "marks.txt")
    environment = make_env()
    proc = start_scheduler_process()
    wait_for(lambda: scheduler_jobs(environment, "running"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert scheduler_jobs(environment, "success")


def test_catchup_creates_one_run_per_missed_daily_interval(env) -> None:
    start = (datetime.now(timezone.utc) - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
    write_dag(env.dags, "daily.py", f"""
        from datetime import datetime, timezone
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("daily", schedule="@daily", start_date=datetime.fromisoformat({start.isoformat()!r}),
                 catchup=True):
            EmptyOperator(task_id="noop")
    """)
    environment = make_env()
    run_scheduler_until_idle(environment)
    runs = sorted(api.list_runs(environment, "daily"), key=lambda r: r.logical_date)
    assert [r.logical_date for r in runs] == [start + timedelta(days=n) for n in range(4)]
    assert all(r.data_interval_end - r.data_interval_start == timedelta(days=1) for r in runs)
    assert {r.state for r in runs} == {"success"}


def test_timedelta_schedule_without_catchup_runs_only_the_latest_interval(env) -> None:
    start = datetime.now(timezone.utc) - timedelta(hours=10, minutes=30)
    write_dag(env.dags, "every3h.py", f"""
        from datetime import datetime, timedelta
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("every3h", schedule=timedelta(hours=3), start_date=datetime.fromisoformat({start.isoformat()!r}),
                 catchup=False):
            EmptyOperator(task_id="noop")
    """)
    environment = make_env()
    run_scheduler_until_idle(environment)
    runs = api.list_runs(environment, "every3h")
    assert len(runs) == 1
    # Airflow's DeltaDataIntervalTimetable skips to the 3 h ending at now rounded down on the epoch's grid.
    seconds = datetime.now(timezone.utc).timestamp()
    edge = datetime.fromtimestamp(seconds - seconds % (3 * 3600), tz=timezone.utc)
    assert runs[0].data_interval_start == edge - timedelta(hours=3)
    assert runs[0].data_interval_end == edge


def test_execution_timeout_kills_the_attempt(env) -> None:
    write_dag(env.dags, "slow.py", """
        import time
        from datetime import timedelta
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        with DAG("slow", schedule=None):
            PythonOperator(task_id="sleepy", python_callable=lambda: time.sleep(30),
                           execution_timeout=timedelta(seconds=0.5))
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "slow")
    run_scheduler_until_idle(environment)
    assert states(environment, "slow", run.run_id) == {"sleepy": "failed"}
    log = api.log_path(environment, "slow", run.run_id, "sleepy", 1).read_text()
    assert "timed out after 0.5 s" in log


def test_paused_dag_runs_nothing(env, tmp_path: Path, monkeypatch) -> None:
    chain_dag(env.dags, tmp_path / "marks.txt")
    environment = make_env()
    run = api.trigger_dag(environment, "chain")
    api.set_paused(environment, "chain", True)
    scheduler = api.make_scheduler(environment, executor="sequential")
    scheduler.run(num_runs=3)
    assert api.get_run(environment, "chain", run.run_id).state == "queued"
    assert not (tmp_path / "marks.txt").exists()


def test_two_schedulers_never_run_the_same_task_instance(env, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    write_dag(env.dags, "wide.py", f"""
        from pathlib import Path
        from nbflow import DAG
        from nbflow.decorators import task
        with DAG("wide", schedule=None):
            @task
            def mark(i):
                with open({str(marks)!r}, "a") as f:
                    f.write(f"{{i}}\\n")
            mark.expand(i=list(range(40)))
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "wide")
    other = start_scheduler_process(until_idle=True)
    try:
        run_scheduler_until_idle(environment)
        other.wait(timeout=120)
    finally:
        if other.poll() is None:
            other.kill()
    wait_for(lambda: api.get_run(environment, "wide", run.run_id).state == "success")
    assert sorted(lines(marks), key=int) == [str(i) for i in range(40)]


def test_depends_on_past_waits_for_the_previous_run(env, tmp_path: Path) -> None:
    write_dag(env.dags, "past.py", """
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        from nbflow.exceptions import NbflowFailException

        def work(ds):
            if ds == "2025-01-01":
                raise NbflowFailException("the first day fails")

        with DAG("past", schedule="@daily"):
            PythonOperator(task_id="work", python_callable=work, depends_on_past=True)
    """)
    environment = make_env()
    first = api.trigger_dag(environment, "past", logical_date=datetime(2025, 1, 1, tzinfo=timezone.utc))
    second = api.trigger_dag(environment, "past", logical_date=datetime(2025, 1, 2, tzinfo=timezone.utc))
    scheduler = api.make_scheduler(environment, executor="sequential")
    scheduler.run(num_runs=6)
    assert states(environment, "past", first.run_id) == {"work": "failed"}
    assert states(environment, "past", second.run_id) == {"work": None}


def test_xcom_pull_with_include_prior_dates_reads_the_previous_run(env) -> None:
    write_dag(env.dags, "prior.py", """
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def push(ti, ds):
            if ds == "2025-01-01":
                ti.xcom_push(key="seen", value=ds)

        def pull(ti):
            return ti.xcom_pull(task_ids="push", key="seen", include_prior_dates=True)

        with DAG("prior", schedule="@daily", max_active_runs=1):
            PythonOperator(task_id="push", python_callable=push) >> PythonOperator(task_id="pull", python_callable=pull)
    """)
    environment = make_env()
    api.trigger_dag(environment, "prior", logical_date=datetime(2025, 1, 1, tzinfo=timezone.utc))
    run_scheduler_until_idle(environment, executor="sequential")
    second = api.trigger_dag(environment, "prior", logical_date=datetime(2025, 1, 2, tzinfo=timezone.utc))
    run_scheduler_until_idle(environment, executor="sequential")
    from nbflow.runtime.xcom_db import DbXComStore
    from nbflow.store.keys import TIKey
    assert DbXComStore(environment.sessions).get(TIKey("prior", "pull", second.run_id), "return_value") \
        == '"2025-01-01"'


def test_a_pool_with_one_slot_runs_its_tasks_one_at_a_time(env, tmp_path: Path) -> None:
    spans = tmp_path / "spans.txt"
    write_dag(env.dags, "pooled.py", f"""
        import time
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def work():
            start = time.time()
            time.sleep(0.3)
            with open({str(spans)!r}, "a") as f:
                f.write(f"{{start}} {{time.time()}}\\n")

        with DAG("pooled", schedule=None):
            for i in range(3):
                PythonOperator(task_id=f"w{{i}}", python_callable=work, pool="single")
    """)
    environment = make_env()
    from nbflow.store import pools, session_scope
    with session_scope(environment.sessions) as session:
        pools.set_pool(session, "single", 1)
    run = api.trigger_dag(environment, "pooled")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "pooled", run.run_id).state == "success"
    intervals = sorted(tuple(map(float, line.split())) for line in lines(spans))
    assert len(intervals) == 3
    assert all(later[0] >= earlier[1] for earlier, later in zip(intervals, intervals[1:]))


def test_clearing_a_task_reruns_it_and_its_downstream(env, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    chain_dag(env.dags, marks)
    environment = make_env()
    run = api.trigger_dag(environment, "chain")
    run_scheduler_until_idle(environment, executor="sequential")
    assert api.clear_tasks(environment, "chain", run.run_id, ["second"]) == 2
    run_scheduler_until_idle(environment, executor="sequential")
    assert api.get_run(environment, "chain", run.run_id).state == "success"
    assert lines(marks) == ["first", "second", "third", "second", "third"]
    second = next(r for r in api.task_states(environment, "chain", run.run_id) if r.task_id == "second")
    assert second.try_number == 2


def test_dead_attempt_runs_the_failure_callback_and_dag_callback(env, tmp_path: Path) -> None:
    marks = tmp_path / "callbacks.txt"
    write_dag(env.dags, "dies.py", f"""
        import os
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def note(what):
            def callback(context):
                with open({str(marks)!r}, "a") as f:
                    f.write(what + "\\n")
            return callback

        with DAG("dies", schedule=None, on_failure_callback=note("dag failed")):
            PythonOperator(task_id="boom", python_callable=lambda: os._exit(9),
                           on_failure_callback=note("task failed"))
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "dies")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "dies", run.run_id).state == "failed"
    assert lines(marks) == ["task failed", "dag failed"]


def test_retry_waits_for_retry_delay_before_the_next_attempt(env, tmp_path: Path) -> None:
    write_dag(env.dags, "flaky.py", """
        from datetime import timedelta
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def flaky(ti):
            if ti.try_number == 1:
                raise RuntimeError("first try fails")

        with DAG("flaky", schedule=None):
            PythonOperator(task_id="flaky", python_callable=flaky, retries=2, retry_delay=timedelta(seconds=1))
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "flaky")
    run_scheduler_until_idle(environment)
    from nbflow.store import session_scope, ti_state
    from nbflow.store.keys import TIKey
    with session_scope(environment.sessions) as session:
        history = ti_state.get_task_history(session, TIKey("flaky", "flaky", run.run_id))
    assert [h.state for h in history] == ["up_for_retry", "success"]
    assert (history[1].start_date - history[0].end_date).total_seconds() >= 1.0


def test_without_catchup_a_restarted_scheduler_runs_only_the_latest_missed_interval(env) -> None:
    start = (datetime.now(timezone.utc) - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    write_dag(env.dags, "nocatch.py", f"""
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("nocatch", schedule="@daily", start_date=datetime.fromisoformat({start.isoformat()!r})):
            EmptyOperator(task_id="noop")
    """)
    environment = make_env()
    run_scheduler_until_idle(environment, executor="sequential")
    first = api.list_runs(environment, "nocatch")
    assert len(first) == 1
    # The scheduler was "down" for three days: its stored next interval is now three days old.
    from nbflow.store import dags as dag_rows, session_scope
    old = first[0].data_interval_start - timedelta(days=3)
    with session_scope(environment.sessions) as session:
        dag_rows.set_next_dagrun(session, "nocatch", next_dagrun=old, data_interval=(old, old + timedelta(days=1)),
                                 create_after=old + timedelta(days=1))
    run_scheduler_until_idle(environment, executor="sequential")
    runs = sorted(api.list_runs(environment, "nocatch"), key=lambda r: r.logical_date)
    assert [r.logical_date for r in runs] == [first[0].logical_date]


def test_catchup_with_a_timedelta_schedule_creates_each_interval(env) -> None:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=7, minutes=30)
    write_dag(env.dags, "every2h.py", f"""
        from datetime import datetime, timedelta
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("every2h", schedule=timedelta(hours=2), start_date=datetime.fromisoformat({start.isoformat()!r}),
                 catchup=True):
            EmptyOperator(task_id="noop")
    """)
    environment = make_env()
    run_scheduler_until_idle(environment, executor="sequential")
    runs = sorted(api.list_runs(environment, "every2h"), key=lambda r: r.logical_date)
    assert [(r.data_interval_start, r.data_interval_end) for r in runs] == [
        (start + timedelta(hours=2 * n), start + timedelta(hours=2 * n + 2)) for n in range(3)]


def test_an_unserialisable_return_value_fails_the_task_naming_it_and_the_type(env) -> None:
    write_dag(env.dags, "badxcom.py", """
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        with DAG("badxcom", schedule=None):
            PythonOperator(task_id="gives_object", python_callable=lambda: object())
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "badxcom")
    run_scheduler_until_idle(environment)
    assert states(environment, "badxcom", run.run_id) == {"gives_object": "failed"}
    log = api.log_path(environment, "badxcom", run.run_id, "gives_object", 1).read_text()
    assert "task 'gives_object'" in log and "builtins.object" in log


def test_an_oversized_xcom_fails_with_the_limit_named(env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__MAX_XCOM_SIZE", "1000")
    write_dag(env.dags, "bigxcom.py", """
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        with DAG("bigxcom", schedule=None):
            PythonOperator(task_id="big", python_callable=lambda: "x" * 5000)
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "bigxcom")
    run_scheduler_until_idle(environment)
    assert states(environment, "bigxcom", run.run_id) == {"big": "failed"}
    assert "core.max_xcom_size" in api.log_path(environment, "bigxcom", run.run_id, "big", 1).read_text()


def test_scheduler_runs_in_a_background_thread_and_stops_when_asked(env, tmp_path: Path) -> None:
    import threading
    marks = tmp_path / "marks.txt"
    chain_dag(env.dags, marks)
    environment = make_env()
    scheduler = api.make_scheduler(environment, executor="local")
    thread = threading.Thread(target=scheduler.run, daemon=True, name="embedded-scheduler")
    thread.start()
    run = api.trigger_dag(environment, "chain")
    scheduler.executor.wakeup.set()
    wait_for(lambda: api.get_run(environment, "chain", run.run_id).state == "success")
    scheduler.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert lines(marks) == ["first", "second", "third"]


def test_a_segfaulting_task_fails_alone_and_the_scheduler_goes_on(env, tmp_path: Path) -> None:
    write_dag(env.dags, "crash.py", """
        import ctypes
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        with DAG("crash", schedule=None):
            boom = PythonOperator(task_id="segfault", python_callable=lambda: ctypes.string_at(0))
            fine = PythonOperator(task_id="fine", python_callable=lambda: "still here")
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "crash")
    run_scheduler_until_idle(environment)
    assert states(environment, "crash", run.run_id) == {"segfault": "failed", "fine": "success"}
    assert api.get_run(environment, "crash", run.run_id).failed_task == "segfault"


def test_higher_priority_weight_runs_first_when_slots_are_scarce(env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__PARALLELISM", "1")
    order = tmp_path / "order.txt"
    write_dag(env.dags, "prio.py", f"""
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def mark(name):
            with open({str(order)!r}, "a") as f:
                f.write(name + "\\n")

        with DAG("prio", schedule=None):
            for name, weight in [("low", 1), ("high", 10), ("mid", 5)]:
                PythonOperator(task_id=name, python_callable=mark, op_args=[name], priority_weight=weight)
    """)
    environment = make_env()
    api.trigger_dag(environment, "prio")
    run_scheduler_until_idle(environment, executor="local")
    assert lines(order) == ["high", "mid", "low"]


def test_a_changed_schedule_takes_effect_at_the_next_parse(env) -> None:
    path = write_dag(env.dags, "moving.py", """
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("moving", schedule=None, start_date=datetime(2025, 1, 1)):
            EmptyOperator(task_id="noop")
    """)
    environment = make_env()
    run_scheduler_until_idle(environment, executor="sequential")
    assert api.list_runs(environment, "moving") == []
    path.write_text(path.read_text().replace("schedule=None", 'schedule="@daily"'))
    os.utime(path, (path.stat().st_atime + 5, path.stat().st_mtime + 5))
    run_scheduler_until_idle(make_env(), executor="sequential")
    runs = api.list_runs(environment, "moving")
    assert [r.run_type for r in runs] == ["scheduled"] and runs[0].state == "success"


SPANS_DAG = """
    import time
    from nbflow import DAG
    from nbflow.operators.python import PythonOperator

    def work(run_id):
        start = time.time()
        time.sleep(0.3)
        with open({spans!r}, "a") as f:
            f.write(f"{{run_id}} {{start}} {{time.time()}}\\n")

    with DAG("spans", schedule=None, {dag_args}):
        for i in range({tasks}):
            PythonOperator(task_id=f"w{{i}}", python_callable=work, op_args=["{{{{ run_id }}}}"])
"""


def most_at_once(spans: Path) -> int:
    """The largest number of recorded attempts that were running at the same moment."""
    edges = []
    for line in lines(spans):
        _, start, end = line.split()
        edges += [(float(start), 1), (float(end), -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += step
        peak = max(peak, running)
    return peak


def test_max_active_tasks_caps_the_attempts_running_at_once(env, tmp_path: Path) -> None:
    spans = tmp_path / "spans.txt"
    write_dag(env.dags, "spans.py", SPANS_DAG.format(spans=str(spans), dag_args="max_active_tasks=2", tasks=6))
    environment = make_env()
    run = api.trigger_dag(environment, "spans")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "spans", run.run_id).state == "success"
    assert len(lines(spans)) == 6
    assert most_at_once(spans) == 2


def test_parallelism_caps_the_attempts_running_at_once(env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__PARALLELISM", "3")
    spans = tmp_path / "spans.txt"
    write_dag(env.dags, "spans.py", SPANS_DAG.format(spans=str(spans), dag_args="max_active_tasks=16", tasks=9))
    environment = make_env()
    run = api.trigger_dag(environment, "spans")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "spans", run.run_id).state == "success"
    assert len(lines(spans)) == 9
    assert most_at_once(spans) == 3


def test_max_active_runs_lets_one_run_finish_before_the_next_starts(env, tmp_path: Path) -> None:
    spans = tmp_path / "spans.txt"
    write_dag(env.dags, "spans.py", SPANS_DAG.format(spans=str(spans), dag_args="max_active_runs=1", tasks=2))
    environment = make_env()
    runs = [api.trigger_dag(environment, "spans", run_id=f"r{i}") for i in range(3)]
    run_scheduler_until_idle(environment)
    assert [api.get_run(environment, "spans", run.run_id).state for run in runs] == ["success"] * 3
    by_run: dict[str, list[float]] = {}
    for line in lines(spans):
        run_id, start, end = line.split()
        by_run.setdefault(run_id, []).extend([float(start), float(end)])
    windows = sorted((min(times), max(times)) for times in by_run.values())
    assert len(windows) == 3
    assert all(later[0] >= earlier[1] for earlier, later in zip(windows, windows[1:]))


def test_a_dag_file_broken_mid_run_lets_the_run_finish_as_last_loaded(env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__SCHEDULER__PARSE_INTERVAL_SEC", "0.1")
    marks, started, go = tmp_path / "marks.txt", tmp_path / "started", tmp_path / "go"
    path = write_dag(env.dags, "typo.py", f"""
        import time
        from pathlib import Path
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def first():
            Path({str(started)!r}).touch()
            while not Path({str(go)!r}).exists():
                time.sleep(0.05)

        def second():
            with open({str(marks)!r}, "a") as f:
                f.write("second\\n")

        with DAG("typo", schedule=None):
            PythonOperator(task_id="first", python_callable=first) >> PythonOperator(task_id="second", python_callable=second)
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "typo")
    scheduler = api.make_scheduler(environment, executor="local")
    thread = in_thread(lambda: scheduler.run(until_idle=True))
    wait_for(started.exists)
    path.write_text(path.read_text() + "\nthis is broken(\n")
    wait_for(lambda: scheduler.dagbag.import_errors)  # the scheduler has seen the broken file
    go.touch()
    thread.join(timeout=60)
    assert api.get_run(environment, "typo", run.run_id).state == "success"
    assert lines(marks) == ["second"]
    assert scheduler.dagbag.kept == {"typo": str(path)}


def test_a_slow_dag_callback_does_not_hold_the_scheduler_back(env, tmp_path: Path) -> None:
    marks, started, other_ran = tmp_path / "marks.txt", tmp_path / "callback_started", tmp_path / "other_ran"
    write_dag(env.dags, "slow_callback.py", f"""
        import time
        from pathlib import Path
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def mark(text):
            with open({str(marks)!r}, "a") as f:
                f.write(text + "\\n")

        def slow_callback(context):
            Path({str(started)!r}).touch()
            deadline = time.monotonic() + 20
            while not Path({str(other_ran)!r}).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            mark("callback " + ("saw the other run" if Path({str(other_ran)!r}).exists() else "timed out"))

        with DAG("notified", schedule=None, on_success_callback=slow_callback):
            PythonOperator(task_id="work", python_callable=lambda: mark("work"))

        with DAG("other", schedule=None):
            PythonOperator(task_id="work", python_callable=lambda: Path({str(other_ran)!r}).touch())
    """)
    environment = make_env()
    api.trigger_dag(environment, "notified")
    scheduler = api.make_scheduler(environment, executor="local")
    thread = in_thread(scheduler.run)
    try:
        wait_for(started.exists)
        other = api.trigger_dag(environment, "other")
        wait_for(lambda: api.get_run(environment, "other", other.run_id).state == "success", timeout=15)
    finally:
        scheduler.stop()
        thread.join(timeout=60)
    assert lines(marks) == ["work", "callback saw the other run"]
