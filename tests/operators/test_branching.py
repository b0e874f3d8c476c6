"""Branching and skipping: BranchPythonOperator, ShortCircuitOperator, LatestOnlyOperator, EmptyOperator,
and NbflowSkipException / NbflowFailException raised from any task."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from nbflow.authoring.dag import DAG
from nbflow.exceptions import NbflowFailException, NbflowSkipException
from nbflow.operators.bash import BashOperator
from nbflow.operators.empty import EmptyOperator
from nbflow.operators.latest_only import LatestOnlyOperator
from nbflow.operators.python import BranchPythonOperator, PythonOperator, ShortCircuitOperator
from nbflow.runtime.run_info import DagRunInfo
from nbflow.utils.task_group import TaskGroup
from tests.authoring.helpers import run

UTC = dt.timezone.utc


def branch_dag(choice: Any) -> DAG:
    with DAG("branching") as d:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: choice)
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        after_a = EmptyOperator(task_id="after_a")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        branch >> [a, b, c]
        a >> after_a
        [after_a, b, c] >> join
    return d


def test_branch_follows_one_task_and_skips_the_others(tmp_path: Path) -> None:
    ran = run(branch_dag("b"), tmp_path)
    assert ran.states == {"branch": "success", "a": "skipped", "b": "success", "c": "skipped",
                          "after_a": "skipped", "join": "success"}
    assert ran.xcom("branch") == "b"


def test_branch_may_follow_a_list(tmp_path: Path) -> None:
    ran = run(branch_dag(["a", "c"]), tmp_path)
    assert ran.states == {"branch": "success", "a": "success", "b": "skipped", "c": "success",
                          "after_a": "success", "join": "success"}


def test_branch_returning_none_skips_every_branch_and_the_join(tmp_path: Path) -> None:
    ran = run(branch_dag(None), tmp_path)
    assert {k: v for k, v in ran.states.items() if k != "branch"} == dict.fromkeys(
        ["a", "b", "c", "after_a", "join"], "skipped")


def test_join_with_default_rule_is_skipped_after_a_branch(tmp_path: Path) -> None:
    with DAG("join_all_success") as d:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "a")
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        branch >> [a, b] >> EmptyOperator(task_id="join")
    assert run(d, tmp_path).states["join"] == "skipped"


def test_branch_may_choose_a_task_group(tmp_path: Path) -> None:
    with DAG("branch_group") as d:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "heavy")
        with TaskGroup("heavy") as heavy:
            first = EmptyOperator(task_id="first")
            first >> EmptyOperator(task_id="second")
        light = EmptyOperator(task_id="light")
        branch >> [heavy, light]
        [heavy, light] >> EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
    ran = run(d, tmp_path)
    assert ran.states == {"branch": "success", "heavy.first": "success", "heavy.second": "success",
                          "light": "skipped", "join": "success"}


def test_branch_to_a_task_that_is_not_downstream_fails(tmp_path: Path) -> None:
    with DAG("branch_bad") as d:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "elsewhere")
        branch >> EmptyOperator(task_id="a")
        EmptyOperator(task_id="elsewhere")
    ran = run(d, tmp_path)
    assert ran.states["branch"] == "failed"
    assert "elsewhere" in ran.log("branch") and "not directly downstream" in ran.log("branch")


def test_branch_to_an_unknown_id_fails_naming_it(tmp_path: Path) -> None:
    ran = run(branch_dag("zzz"), tmp_path)
    assert ran.states["branch"] == "failed"
    assert "branch 'zzz' is not a task or task group of DAG 'branching'" in ran.log("branch")


def short_circuit_dag(condition: Any, *, ignore_downstream_trigger_rules: bool) -> DAG:
    with DAG("short") as d:
        check = ShortCircuitOperator(task_id="check", python_callable=lambda: condition,
                                     ignore_downstream_trigger_rules=ignore_downstream_trigger_rules)
        direct = EmptyOperator(task_id="direct")
        other = EmptyOperator(task_id="other")
        cleanup = EmptyOperator(task_id="cleanup", trigger_rule="all_done")
        check >> direct >> cleanup
        other >> cleanup
    return d


def test_truthy_short_circuit_lets_everything_run(tmp_path: Path) -> None:
    ran = run(short_circuit_dag([0], ignore_downstream_trigger_rules=True), tmp_path)
    assert set(ran.states.values()) == {"success"}
    assert ran.xcom("check") == [0]


def test_falsy_short_circuit_skips_all_downstream_even_an_all_done_task(tmp_path: Path) -> None:
    ran = run(short_circuit_dag(0, ignore_downstream_trigger_rules=True), tmp_path)
    assert ran.states == {"check": "success", "direct": "skipped", "other": "success", "cleanup": "skipped"}
    assert "skipping all downstream tasks" in ran.log("check")


def test_falsy_short_circuit_respecting_trigger_rules_skips_only_direct_downstream(tmp_path: Path) -> None:
    ran = run(short_circuit_dag("", ignore_downstream_trigger_rules=False), tmp_path)
    assert ran.states == {"check": "success", "direct": "skipped", "other": "success", "cleanup": "success"}


def test_short_circuit_by_default_ignores_downstream_trigger_rules(tmp_path: Path) -> None:
    with DAG("short_default") as d:
        check = ShortCircuitOperator(task_id="check", python_callable=lambda: False)
        check >> EmptyOperator(task_id="a") >> EmptyOperator(task_id="b", trigger_rule="all_done")
    assert run(d, tmp_path).states == {"check": "success", "a": "skipped", "b": "skipped"}


def latest_only_dag() -> DAG:
    with DAG("latest", schedule="@daily", start_date=dt.datetime(2020, 1, 1)) as d:
        latest = LatestOnlyOperator(task_id="latest")
        latest >> EmptyOperator(task_id="notify") >> EmptyOperator(task_id="after")
        latest >> EmptyOperator(task_id="tolerant", trigger_rule="none_failed")
    return d


def test_latest_only_lets_a_manual_run_proceed(tmp_path: Path) -> None:
    ran = run(latest_only_dag(), tmp_path, logical_date=dt.datetime(2020, 6, 1, tzinfo=UTC))
    assert set(ran.states.values()) == {"success"}


def test_latest_only_skips_direct_downstream_of_an_old_scheduled_run(tmp_path: Path) -> None:
    d = latest_only_dag()
    start = dt.datetime(2020, 6, 1, tzinfo=UTC)
    old = DagRunInfo(dag_id="latest", run_id="scheduled__2020-06-01", logical_date=start,
                     data_interval_start=start, data_interval_end=start + dt.timedelta(days=1),
                     run_type="scheduled")
    ran = run(d, tmp_path, run_info=old)
    assert ran.states == {"latest": "success", "notify": "skipped", "after": "skipped", "tolerant": "skipped"}
    assert "not the latest run" in ran.log("latest")


def test_latest_only_lets_the_latest_scheduled_run_proceed(tmp_path: Path) -> None:
    d = latest_only_dag()
    today = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - dt.timedelta(days=1)
    latest = DagRunInfo(dag_id="latest", run_id="scheduled__latest", logical_date=start,
                        data_interval_start=start, data_interval_end=today, run_type="scheduled")
    assert set(run(d, tmp_path, run_info=latest).states.values()) == {"success"}


def test_empty_operator_succeeds_and_pushes_nothing(tmp_path: Path) -> None:
    with DAG("empty") as d:
        EmptyOperator(task_id="e")
    ran = run(d, tmp_path)
    assert ran.states == {"e": "success"} and ran.xcom("e") is None


def test_skip_exception_from_any_task_skips_it(tmp_path: Path) -> None:
    def skip() -> None:
        raise NbflowSkipException("nothing new today")

    with DAG("skip_any") as d:
        PythonOperator(task_id="p", python_callable=skip, retries=2) >> EmptyOperator(task_id="after")
        BashOperator(task_id="b", bash_command="exit 99")
    ran = run(d, tmp_path)
    assert ran.states == {"p": "skipped", "after": "skipped", "b": "skipped"}
    assert ran.row("p")["try_number"] == 1
    assert "nothing new today" in ran.log("p")


def test_fail_exception_fails_at_once_with_retries_left(tmp_path: Path) -> None:
    def fail() -> None:
        raise NbflowFailException("bad credentials, retrying cannot help")

    with DAG("fail_any") as d:
        PythonOperator(task_id="p", python_callable=fail, retries=3, retry_delay=0)
    ran = run(d, tmp_path)
    assert ran.states == {"p": "failed"}
    assert ran.row("p")["try_number"] == 1
    assert not ran.log_path("p", attempt=2).exists()
    assert "bad credentials" in ran.log("p")
