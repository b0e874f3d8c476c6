"""A stored task leaves out settings at their usual value and reads back exactly what its operator had."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from nbflow import DAG
from nbflow.operators.bash import BashOperator
from nbflow.operators.empty import EmptyOperator
from nbflow.runtime.serialized_dag import SerializedDag, serialize_dag

SETTINGS = ("retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay", "pool", "pool_slots",
            "priority_weight", "queue", "execution_timeout", "depends_on_past", "wait_for_downstream",
            "max_active_tis_per_dag", "max_active_tis_per_dagrun", "start_date", "end_date", "email",
            "email_on_failure", "email_on_retry", "downstream_task_ids", "upstream_task_ids")


def stored(dag: DAG) -> SerializedDag:
    return SerializedDag(json.loads(json.dumps(serialize_dag(dag))))


def plain_and_tuned() -> DAG:
    with DAG("tuned", schedule=None) as dag:
        plain = EmptyOperator(task_id="plain")
        tuned = BashOperator(task_id="tuned", bash_command="true", retries=2, retry_delay=timedelta(seconds=5),
                             retry_exponential_backoff=True, max_retry_delay=timedelta(minutes=1), pool="small",
                             pool_slots=2, priority_weight=7, queue="gpu", execution_timeout=timedelta(seconds=30),
                             depends_on_past=True, wait_for_downstream=True, max_active_tis_per_dag=1,
                             start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), email=["a@x.org"],
                             email_on_failure=False, email_on_retry=False, trigger_rule="all_done",
                             on_failure_callback=print)
        plain >> tuned
    return dag


@pytest.mark.parametrize("task_id", ["plain", "tuned"])
def test_a_stored_task_reads_back_every_setting_of_its_operator(task_id: str) -> None:
    dag = plain_and_tuned()
    task, kept = dag.task_dict[task_id], stored(dag).task_dict[task_id]
    for name in SETTINGS:
        assert getattr(kept, name) == getattr(task, name), name
    assert str(kept.trigger_rule) == str(getattr(task.trigger_rule, "value", task.trigger_rule))
    assert (kept.on_failure_callback is not None) == (task.on_failure_callback is not None)


def test_settings_at_their_usual_value_are_not_stored() -> None:
    tasks = {t["task_id"]: t for t in serialize_dag(plain_and_tuned())["tasks"]}
    assert not {"pool", "queue", "retries", "has_callbacks", "execution_timeout"} & set(tasks["plain"])
    assert {"pool", "queue", "retries", "has_callbacks", "execution_timeout"} <= set(tasks["tuned"])
