"""Readiness facts the scheduler, the mini-scheduler and `dags test` share (readiness.py, run_state.py)."""
from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from nbflow.authoring.dag import DAG
from nbflow.authoring.trigger_rule import TriggerRule as TR
from nbflow.operators.empty import EmptyOperator
from nbflow.runtime.attempt import skip_tasks
from nbflow.runtime.readiness import EARLY_RULES, Decision, UpstreamSummary, decide
from nbflow.runtime.run_state import RunState
from nbflow.store import runs as run_rows
from nbflow.store import task_instances as ti_rows
from nbflow.store import ti_state
from nbflow.store.engine import make_engine, make_session_factory, session_scope
from nbflow.store.keys import TaskSpec, TIKey
from nbflow.store.migrate import init_db

_LETTERS = {"s": "success", "f": "failed", "u": "upstream_failed", "k": "skipped", "n": None}


def test_early_rules_are_exactly_those_that_may_run_before_every_upstream_is_done() -> None:
    unfinished = [UpstreamSummary.of(_LETTERS[c] for c in (*mix, "n"))
                  for n in range(3) for mix in itertools.product("sfuk", repeat=n)]
    early = {rule for rule in TR if any(decide(rule, up) is Decision.RUN for up in unfinished)}
    assert early == EARLY_RULES


def test_a_run_built_from_store_rows_knows_which_mapped_tasks_are_expanded() -> None:
    with DAG("mapped", schedule=None) as dag:
        EmptyOperator.partial(task_id="over_some").expand(doc=[1, 2])
        EmptyOperator.partial(task_id="over_none").expand(doc=[])
        EmptyOperator.partial(task_id="not_yet").expand(doc=[1])
    state = RunState.of_rows(dag, [("over_some", 0, None, 0, None), ("over_some", 1, None, 0, None),
                                   ("over_none", -1, "skipped", 0, None), ("not_yet", -1, None, 0, None),
                                   ("gone_from_the_dag", -1, None, 0, None)])
    assert state.expanded == {"over_some", "over_none"}
    assert ("gone_from_the_dag", -1) not in state.tis
    assert state.needs_expansion(state.tis[("not_yet", -1)])


@pytest.fixture
def sessions(tmp_path: Path) -> Callable[[], Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'nbflow.db'}")
    init_db(engine)
    return make_session_factory(engine)


@pytest.mark.parametrize("ignore_trigger_rules", [False, True])
def test_a_skip_request_skips_the_same_instances_in_process_and_in_the_store(
        sessions: Callable[[], Session], ignore_trigger_rules: bool) -> None:
    before = {"fresh": None, "retrying": "up_for_retry", "running": "running", "done": "success"}
    with DAG("branchy", schedule=None) as dag:
        for task_id in ("branch", *before):
            EmptyOperator(task_id=task_id)
    in_process = RunState.fresh(dag)
    for task_id, state in before.items():
        in_process.tis[(task_id, -1)].state = state
    in_process.skip(tuple(before), ignore_trigger_rules=ignore_trigger_rules)
    source = TIKey("branchy", "branch", "manual__1", -1)
    with session_scope(sessions) as session:
        run_rows.create_dag_run(session, dag_id="branchy", run_id=source.run_id, run_type="manual",
                                logical_date=None)
        ti_rows.create_task_instances(session, "branchy", source.run_id,
                                      [TaskSpec(task_id=t) for t in ("branch", *before)])
        for task_id, state in before.items():
            if state is not None:
                ti_state.set_task_state(session, TIKey("branchy", task_id, source.run_id, -1), state)
        skip_tasks(session, source, tuple(before), ignore_trigger_rules=ignore_trigger_rules)
    with session_scope(sessions) as session:
        stored = {t: s for t, _, s, _, _ in ti_rows.get_task_states(session, "branchy", source.run_id)}
    assert {t: in_process.tis[(t, -1)].state for t in before} == {t: stored[t] for t in before}
