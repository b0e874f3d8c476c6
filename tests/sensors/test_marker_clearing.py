"""Clearing through ExternalTaskMarkers (api.clear_tasks), on runs created but not run: chains, depth, cycles."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from nbflow.exceptions import NbflowException
from nbflow.runtime import api
from nbflow.store import session_scope, ti_state
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env

MOMENT = datetime(2025, 3, 1, tzinfo=timezone.utc)

CHAIN = """
from datetime import datetime
from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
from nbflow.sensors.external_task import ExternalTaskMarker

with DAG("a", schedule=None, start_date=datetime(2025, 1, 1)):
    ExternalTaskMarker(task_id="to_b", external_dag_id="b", external_task_id="to_c", recursion_depth={depth})

with DAG("b", schedule=None, start_date=datetime(2025, 1, 1)):
    ExternalTaskMarker(task_id="to_c", external_dag_id="c", external_task_id="{c_target}")

with DAG("c", schedule=None, start_date=datetime(2025, 1, 1)):
    EmptyOperator(task_id="last")
    ExternalTaskMarker(task_id="back_to_a", external_dag_id="a", external_task_id="to_b")
"""


def chain(nbflow_env, *, depth: int = 10, c_target: str = "last") -> api.Environment:
    write_dag(nbflow_env.dags, "chain.py", CHAIN.format(depth=depth, c_target=c_target))
    env = make_env()
    for dag_id in ("a", "b", "c"):
        api.trigger_dag(env, dag_id, run_id="r", logical_date=MOMENT)
        with session_scope(env.sessions) as session:  # as if each had run to success
            ti_state.set_task_states(session, [row.key for row in api.task_states(env, dag_id, "r")], "success")
    return env


def states(env: api.Environment) -> dict[str, str | None]:
    return {f"{dag_id}.{row.task_id}": row.state for dag_id in ("a", "b", "c")
            for row in api.task_states(env, dag_id, "r")}


def test_clearing_a_marker_clears_through_a_marker_in_the_next_dag(nbflow_env) -> None:
    env = chain(nbflow_env)
    assert api.clear_tasks(env, "a", "r", ["to_b"]) == 3
    assert states(env) == {"a.to_b": None, "b.to_c": None, "c.last": None, "c.back_to_a": "success"}


def test_a_chain_deeper_than_recursion_depth_is_an_error_that_clears_nothing(nbflow_env) -> None:
    env = chain(nbflow_env, depth=1)
    with pytest.raises(NbflowException, match="maximum recursion depth 1 reached for ExternalTaskMarker b.to_c"):
        api.clear_tasks(env, "a", "r", ["to_b"])
    assert set(states(env).values()) == {"success"}


def test_markers_that_form_a_cycle_are_an_error_naming_the_marker(nbflow_env) -> None:
    env = chain(nbflow_env, depth=5, c_target="back_to_a")
    with pytest.raises(NbflowException, match="maximum recursion depth 5 reached .* form a cycle"):
        api.clear_tasks(env, "a", "r", ["to_b"])
