"""The one retry rule (runtime/retries.py), and that `dags test` and the scheduler's recorder follow it alike."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from nbflow.authoring.dag import DAG
from nbflow.exceptions import NbflowFailException, TemplateRenderError
from nbflow.operators.empty import EmptyOperator
from nbflow.runtime.attempt import fail_dead_attempt, record_outcome
from nbflow.runtime.retries import RetryDecision, decide_after_failure, is_retryable
from nbflow.runtime.run_info import AttemptOutcome
from nbflow.runtime.run_state import RunState
from nbflow.store import runs as run_rows
from nbflow.store import task_instances as ti_rows
from nbflow.store import ti_state
from nbflow.store.engine import make_engine, make_session_factory, session_scope
from nbflow.store.keys import TaskSpec, TIKey
from nbflow.store.migrate import init_db

LOGICAL = dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2025, 1, 3, 12, 0, tzinfo=dt.timezone.utc)


def task(**kwargs: object) -> EmptyOperator:
    with DAG("rules", schedule=None):
        return EmptyOperator(task_id="t", **kwargs)


def test_a_failure_is_retried_while_tries_remain() -> None:
    decision = decide_after_failure(task(retries=2, retry_delay=30), try_number=2, logical_date=LOGICAL, now=NOW)
    assert decision == RetryDecision("up_for_retry", NOW + dt.timedelta(seconds=30))


def test_a_failure_fails_once_tries_are_used_up() -> None:
    decision = decide_after_failure(task(retries=2, retry_delay=30), try_number=3, logical_date=LOGICAL, now=NOW)
    assert decision == RetryDecision("failed", None)


def test_a_non_retryable_error_fails_at_once() -> None:
    assert not is_retryable(NbflowFailException("no")) and not is_retryable(TemplateRenderError("bad"))
    assert is_retryable(RuntimeError("flaky"))
    decision = decide_after_failure(task(retries=5), try_number=1, retryable=False, logical_date=LOGICAL, now=NOW)
    assert decision.state == "failed"


def test_backoff_grows_and_is_capped_by_max_retry_delay() -> None:
    backing_off = task(retries=9, retry_delay=10, retry_exponential_backoff=True)
    capped = task(retries=9, retry_delay=10, retry_exponential_backoff=True, max_retry_delay=25)
    waits = [decide_after_failure(backing_off, try_number=n, logical_date=LOGICAL, now=NOW).next_retry_at - NOW
             for n in (1, 2, 3)]
    assert waits[0] < waits[1] < waits[2]
    assert dt.timedelta(seconds=10) <= waits[0] < dt.timedelta(seconds=20)  # [b, 2b) with b = retry_delay
    assert all(decide_after_failure(capped, try_number=n, logical_date=LOGICAL, now=NOW).next_retry_at - NOW
               <= dt.timedelta(seconds=25) for n in (1, 2, 3))


def test_backoff_jitter_is_the_same_for_the_same_logical_date() -> None:
    backing_off = task(retries=3, retry_delay=100, retry_exponential_backoff=True)
    first = decide_after_failure(backing_off, try_number=2, logical_date=LOGICAL, now=NOW)
    again = decide_after_failure(backing_off, try_number=2, logical_date=LOGICAL, now=NOW)
    assert first == again


def test_a_cleared_instances_max_tries_is_honoured_over_the_tasks_retries() -> None:
    once = task(retries=1, retry_delay=0)
    assert decide_after_failure(once, try_number=3, logical_date=LOGICAL, now=NOW).state == "failed"
    assert decide_after_failure(once, try_number=3, max_tries=3, logical_date=LOGICAL, now=NOW).state \
        == "up_for_retry"


def test_without_its_task_an_instance_with_tries_left_retries_at_once() -> None:
    assert decide_after_failure(None, try_number=1, max_tries=1, logical_date=None, now=NOW) \
        == RetryDecision("up_for_retry", NOW)
    assert decide_after_failure(None, try_number=2, max_tries=1, logical_date=None, now=NOW).state == "failed"


# -- the in-process engine (`dags test`) and the scheduler's recorder agree ---------------------------------

@pytest.fixture
def sessions(tmp_path: Path) -> Callable[[], Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'nbflow.db'}")
    init_db(engine)
    return make_session_factory(engine)


def retrying_dag() -> DAG:
    with DAG("agree", schedule=None) as dag:
        EmptyOperator(task_id="backoff", retries=2, retry_delay=10, retry_exponential_backoff=True,
                      max_retry_delay=15)
        EmptyOperator(task_id="plain", retries=1, retry_delay=7)
    return dag


FAILURES = [("backoff", 1, True), ("backoff", 2, True), ("backoff", 3, True),
            ("plain", 1, False), ("plain", 1, True), ("plain", 2, True)]


def in_process(dag: DAG, task_id: str, try_number: int, retryable: bool) -> tuple[str | None, dt.datetime | None]:
    state = RunState.fresh(dag)
    ti = state.tis[(task_id, -1)]
    outcome = AttemptOutcome(state="failed", try_number=try_number, duration=0.0, retryable=retryable)
    state.apply(ti, outcome, logical_date=LOGICAL, now=NOW)
    return ti.state, ti.next_retry_at


def recorded(sessions: Callable[[], Session], dag: DAG, task_id: str, try_number: int, retryable: bool,
             ) -> tuple[str | None, dt.datetime | None]:
    run_id = f"manual__{task_id}_{try_number}_{retryable}"
    key = TIKey(dag.dag_id, task_id, run_id, -1)
    with session_scope(sessions) as session:
        run_rows.create_dag_run(session, dag_id=dag.dag_id, run_id=run_id, run_type="manual", logical_date=LOGICAL,
                                data_interval=(LOGICAL, LOGICAL))
        ti_rows.create_task_instances(session, dag.dag_id, run_id,
                                      [TaskSpec(task_id=task_id, max_tries=dag.task_dict[task_id].retries)])
        ti_state.set_task_state(session, key, "running", try_number=try_number)
        outcome = AttemptOutcome(state="failed", try_number=try_number, duration=0.0, retryable=retryable)
        record_outcome(session, dag, key, outcome, logical_date=LOGICAL, now=NOW)
    with session_scope(sessions) as session:
        row = ti_rows.get_task_instance(session, key)
        return row.state, row.next_retry_at


@pytest.mark.parametrize(("task_id", "try_number", "retryable"), FAILURES)
def test_dags_test_and_the_scheduler_record_a_failure_alike(sessions: Callable[[], Session], task_id: str,
                                                           try_number: int, retryable: bool) -> None:
    dag = retrying_dag()
    expected = decide_after_failure(dag.task_dict[task_id], try_number=try_number, retryable=retryable,
                                    logical_date=LOGICAL, now=NOW)
    assert in_process(dag, task_id, try_number, retryable) == (expected.state, expected.next_retry_at)
    assert recorded(sessions, dag, task_id, try_number, retryable) == (expected.state, expected.next_retry_at)


def test_a_dead_attempt_retries_by_the_same_rule(sessions: Callable[[], Session]) -> None:
    dag = retrying_dag()
    key = TIKey("agree", "plain", "manual__dead", -1)
    with session_scope(sessions) as session:
        run_rows.create_dag_run(session, dag_id="agree", run_id=key.run_id, run_type="manual", logical_date=LOGICAL,
                                data_interval=(LOGICAL, LOGICAL))
        ti_rows.create_task_instances(session, "agree", key.run_id, [TaskSpec(task_id="plain", max_tries=1)])
        ti_state.set_task_state(session, key, "running", try_number=1)
        assert fail_dead_attempt(session, dag, key, 1, "killed") == "up_for_retry"
        ti_state.set_task_state(session, key, "running", try_number=2)
        assert fail_dead_attempt(session, dag, key, 2, "killed") == "failed"
