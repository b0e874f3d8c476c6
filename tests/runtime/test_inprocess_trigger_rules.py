"""Each trigger rule end to end: upstream tasks succeed, fail or skip for real, the join's state follows."""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.authoring.dag import DAG
from nbflow.authoring.trigger_rule import TriggerRule as TR
from nbflow.exceptions import NbflowFailException, NbflowSkipException
from nbflow.operators.empty import EmptyOperator
from nbflow.operators.python import PythonOperator
from tests.authoring.helpers import run


def _outcome(kind: str) -> None:
    if kind == "f":
        raise NbflowFailException("failing on purpose")
    if kind == "k":
        raise NbflowSkipException("skipping on purpose")


def join_dag(rule: TR, outcomes: str) -> DAG:
    """Upstream task i ends as outcomes[i] (s success, f failed, k skipped, u upstream_failed); then `join`."""
    with DAG(f"rule_{rule.value}_{outcomes}") as d:
        ups = []
        for i, kind in enumerate(outcomes):
            if kind == "u":  # a task whose own upstream failed
                parent = PythonOperator(task_id=f"parent{i}", python_callable=_outcome, op_args=["f"])
                ups.append(parent >> EmptyOperator(task_id=f"up{i}"))
            else:
                ups.append(PythonOperator(task_id=f"up{i}", python_callable=_outcome, op_args=[kind]))
        ups >> EmptyOperator(task_id="join", trigger_rule=rule)
    return d


CASES = [
    (TR.ALL_SUCCESS, "ss", "success"), (TR.ALL_SUCCESS, "sk", "skipped"), (TR.ALL_SUCCESS, "sf", "upstream_failed"),
    (TR.ALL_FAILED, "ff", "success"), (TR.ALL_FAILED, "fu", "success"), (TR.ALL_FAILED, "fs", "skipped"),
    (TR.ALL_DONE, "sfk", "success"), (TR.ALL_DONE, "uu", "success"),
    (TR.ALL_DONE_SETUP_SUCCESS, "fk", "success"),
    (TR.ALL_DONE_MIN_ONE_SUCCESS, "sf", "success"), (TR.ALL_DONE_MIN_ONE_SUCCESS, "ff", "upstream_failed"),
    (TR.ALL_DONE_MIN_ONE_SUCCESS, "sk", "skipped"),
    (TR.ALL_SKIPPED, "kk", "success"), (TR.ALL_SKIPPED, "ks", "skipped"),
    (TR.ONE_SUCCESS, "fs", "success"), (TR.ONE_SUCCESS, "kk", "skipped"), (TR.ONE_SUCCESS, "fk", "upstream_failed"),
    (TR.ONE_FAILED, "sf", "success"), (TR.ONE_FAILED, "su", "success"), (TR.ONE_FAILED, "sk", "skipped"),
    (TR.ONE_DONE, "kf", "success"), (TR.ONE_DONE, "ku", "skipped"),
    (TR.NONE_FAILED, "sk", "success"), (TR.NONE_FAILED, "kk", "success"), (TR.NONE_FAILED, "sf", "upstream_failed"),
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, "sk", "success"), (TR.NONE_FAILED_MIN_ONE_SUCCESS, "kk", "skipped"),
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, "su", "upstream_failed"),
    (TR.NONE_SKIPPED, "sf", "success"), (TR.NONE_SKIPPED, "sk", "skipped"),
    (TR.ALWAYS, "ff", "success"), (TR.ALWAYS, "kk", "success"),
]


def test_every_rule_is_run_end_to_end() -> None:
    assert {rule for rule, _, _ in CASES} == set(TR)


@pytest.mark.parametrize(("rule", "outcomes", "expected"), CASES,
                         ids=[f"{r.value}-{o}" for r, o, _ in CASES])
def test_join_state_follows_its_trigger_rule(tmp_path: Path, rule: TR, outcomes: str, expected: str) -> None:
    ran = run(join_dag(rule, outcomes), tmp_path)
    states = ran.states
    for i, kind in enumerate(outcomes):
        assert states[f"up{i}"] == {"s": "success", "f": "failed", "k": "skipped", "u": "upstream_failed"}[kind]
    assert states["join"] == expected


def test_run_fails_when_a_leaf_is_upstream_failed(tmp_path: Path) -> None:
    ran = run(join_dag(TR.ALL_SUCCESS, "sf"), tmp_path)
    assert ran.state == "failed"
    assert ran.result.failed_task == "up1"


def test_run_succeeds_when_an_all_done_leaf_ran_after_a_failure(tmp_path: Path) -> None:
    ran = run(join_dag(TR.ALL_DONE, "sf"), tmp_path)
    assert ran.states["join"] == "success"
    assert ran.state == "success", "only leaves decide the run's state, as in Airflow"


def test_skip_propagates_down_a_chain_of_all_success_tasks(tmp_path: Path) -> None:
    with DAG("skip_chain") as d:
        first = PythonOperator(task_id="first", python_callable=_outcome, op_args=["k"])
        first >> EmptyOperator(task_id="second") >> EmptyOperator(task_id="third")
    ran = run(d, tmp_path)
    assert ran.states == {"first": "skipped", "second": "skipped", "third": "skipped"}
    assert ran.state == "success"

