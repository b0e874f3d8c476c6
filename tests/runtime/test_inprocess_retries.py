"""Retries with their delays, per-attempt log files, task and DAG callbacks, in an in-process run."""
from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from nbflow.authoring.dag import DAG
from nbflow.exceptions import NbflowSkipException
from nbflow.operators.bash import BashOperator
from nbflow.operators.empty import EmptyOperator
from nbflow.operators.python import PythonOperator
from nbflow.runtime.inprocess import make_run_info, run_dag_in_process
from tests.authoring.helpers import run


def fail_until(marker: Path, attempts: int) -> Any:
    """A callable that fails until it has been called `attempts` times (counted in a file)."""
    def flaky(ti: Any) -> int:
        calls = int(marker.read_text()) + 1 if marker.exists() else 1
        marker.write_text(str(calls))
        print(f"attempt {ti.try_number} of call {calls}")
        if calls < attempts:
            raise RuntimeError(f"transient failure {calls}")
        return calls
    return flaky


def test_failed_attempt_is_retried_after_retry_delay_with_a_log_per_attempt(tmp_path: Path) -> None:
    with DAG("retry") as d:
        PythonOperator(task_id="flaky", python_callable=fail_until(tmp_path / "calls", 2), retries=2,
                       retry_delay=dt.timedelta(seconds=0.05))
    ran = run(d, tmp_path)
    assert ran.states == {"flaky": "success"}
    assert ran.row("flaky")["try_number"] == 2
    first, second = ran.log("flaky", attempt=1), ran.log("flaky", attempt=2)
    assert "attempt 1 of call 1" in first and "RuntimeError: transient failure 1" in first
    assert "try 1 of 3" in first
    assert "attempt 2 of call 2" in second and "try 2 of 3" in second
    assert not ran.log_path("flaky", attempt=3).exists()
    assert ran.xcom("flaky") == 2


def test_task_fails_once_its_retries_are_used_up(tmp_path: Path) -> None:
    with DAG("exhausted") as d:
        PythonOperator(task_id="flaky", python_callable=fail_until(tmp_path / "calls", 10), retries=1,
                       retry_delay=0.01) >> EmptyOperator(task_id="after")
    ran = run(d, tmp_path)
    assert ran.states == {"flaky": "failed", "after": "upstream_failed"}
    assert ran.row("flaky")["try_number"] == 2
    assert (tmp_path / "calls").read_text() == "2"
    assert ran.state == "failed" and ran.result.failed_task == "flaky"


def test_retry_waits_the_backed_off_delay_between_attempts(tmp_path: Path) -> None:
    asked: list[float] = []

    def sleep(seconds: float) -> None:  # records what the runner asks for, then really waits
        asked.append(seconds)
        time.sleep(seconds)

    with DAG("waits") as d:
        PythonOperator(task_id="flaky", python_callable=fail_until(tmp_path / "calls", 3), retries=2,
                       retry_delay=dt.timedelta(seconds=0.2), retry_exponential_backoff=True,
                       max_retry_delay=dt.timedelta(seconds=0.3))
    result = run_dag_in_process(d, run=make_run_info(d, None, {}), log_folder=tmp_path / "logs", sleep=sleep)
    assert result.state == "success"
    assert len(asked) == 2
    # Airflow's backoff waits whole seconds, at least 1 s: both retries are capped by max_retry_delay.
    assert all(0.2 < seconds <= 0.3 for seconds in asked), asked


def test_retries_from_default_args_apply(tmp_path: Path) -> None:
    with DAG("default_retries", default_args={"retries": 1, "retry_delay": 0.01}) as d:
        BashOperator(task_id="b", bash_command=f"test -e {tmp_path}/seen || {{ touch {tmp_path}/seen; exit 1; }}")
    ran = run(d, tmp_path)
    assert ran.states == {"b": "success"} and ran.row("b")["try_number"] == 2


def record(path: Path, name: str) -> Any:
    def callback(context: dict[str, Any]) -> None:
        ti = context.get("ti")
        entry = {"event": name, "try": getattr(ti, "try_number", None), "task": getattr(ti, "task_id", None),
                 "error": str(context.get("exception") or "") or None}
        with path.open("a") as f:
            f.write(json.dumps(entry) + "\n")
    return callback


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_task_callbacks_are_called_for_execute_retry_and_success(tmp_path: Path) -> None:
    out = tmp_path / "callbacks.jsonl"
    with DAG("callbacks") as d:
        PythonOperator(task_id="t", python_callable=fail_until(tmp_path / "calls", 2), retries=1, retry_delay=0.01,
                       on_execute_callback=record(out, "execute"), on_retry_callback=record(out, "retry"),
                       on_success_callback=record(out, "success"), on_failure_callback=record(out, "failure"))
    run(d, tmp_path)
    assert [(e["event"], e["try"]) for e in events(out)] == [
        ("execute", 1), ("retry", 1), ("execute", 2), ("success", 2)]
    assert events(out)[1]["error"] == "transient failure 1"


def test_failure_callback_is_called_with_the_exception(tmp_path: Path) -> None:
    out = tmp_path / "callbacks.jsonl"
    with DAG("fail_callback") as d:
        PythonOperator(task_id="t", python_callable=fail_until(tmp_path / "calls", 5),
                       on_failure_callback=[record(out, "failure"), record(out, "failure_again")],
                       on_success_callback=record(out, "success"))
    run(d, tmp_path)
    assert [(e["event"], e["error"]) for e in events(out)] == [
        ("failure", "transient failure 1"), ("failure_again", "transient failure 1")]


def test_skipped_callback_is_called_for_a_skip(tmp_path: Path) -> None:
    out = tmp_path / "callbacks.jsonl"

    def skip() -> None:
        raise NbflowSkipException("nothing to do")

    with DAG("skip_callback") as d:
        PythonOperator(task_id="t", python_callable=skip, on_skipped_callback=record(out, "skipped"),
                       on_success_callback=record(out, "success"))
    run(d, tmp_path)
    assert [e["event"] for e in events(out)] == ["skipped"]


def test_a_failing_callback_does_not_change_the_task_state(tmp_path: Path) -> None:
    def broken(context: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    with DAG("broken_callback") as d:
        PythonOperator(task_id="t", python_callable=lambda: 1, on_success_callback=broken)
    ran = run(d, tmp_path)
    assert ran.states == {"t": "success"}
    assert "callback 'broken' failed" in ran.log("t") and "callback bug" in ran.log("t")


def test_dag_success_callback_is_called_once_the_run_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "dag_callbacks.jsonl"

    def dag_callback(name: str) -> Any:
        def callback(context: dict[str, Any]) -> None:
            with out.open("a") as f:
                f.write(json.dumps({"event": name, "dag": context["dag"].dag_id, "run": context["run_id"],
                                    "reason": context.get("reason")}) + "\n")
        return callback

    with DAG("dag_ok", on_success_callback=dag_callback("success"),
             on_failure_callback=dag_callback("failure")) as ok:
        EmptyOperator(task_id="t")
    with DAG("dag_bad", on_success_callback=dag_callback("success"),
             on_failure_callback=dag_callback("failure")) as bad:
        PythonOperator(task_id="boom", python_callable=fail_until(tmp_path / "calls", 5))
    ran_ok, ran_bad = run(ok, tmp_path / "ok"), run(bad, tmp_path / "bad")
    assert [(e["event"], e["dag"]) for e in events(out)] == [("success", "dag_ok"), ("failure", "dag_bad")]
    assert events(out)[0]["run"] == ran_ok.result.run.run_id
    assert "boom" in events(out)[1]["reason"]
    assert ran_bad.state == "failed"
