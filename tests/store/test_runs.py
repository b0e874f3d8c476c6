"""DAG runs: creation, duplicates, listing and state changes."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from nbflow.exceptions import DagRunAlreadyExists, InvalidStateError
from nbflow.store.keys import TaskSpec
from nbflow.store.models import TaskInstanceORM
from nbflow.store.runs import (
    count_active_runs,
    create_dag_run,
    delete_dag_run,
    get_dag_run,
    list_dag_runs,
    set_dag_run_state,
)
from nbflow.store.task_instances import create_task_instances

from .conftest import Db
from .helpers import day, make_run


def test_created_run_reads_back_with_its_interval_and_conf(db: Db) -> None:
    with db.tx() as s:
        created = create_dag_run(s, dag_id="etl", run_id="scheduled__2025-01-02", run_type="scheduled",
                                 logical_date=day(2), data_interval=(day(1), day(2)), conf={"day": 3},
                                 triggered_by="scheduler")
    with db.tx() as s:
        run = get_dag_run(s, "etl", "scheduled__2025-01-02")
    assert run == created
    assert (run.state, run.run_type, run.conf, run.external_trigger) == ("queued", "scheduled", {"day": 3}, False)
    assert (run.data_interval_start, run.data_interval_end, run.logical_date) == (day(1), day(2), day(2))
    assert run.queued_at is not None and run.start_date is None


def test_duplicate_run_id_raises_and_leaves_the_transaction_usable(db: Db) -> None:
    with db.tx() as s:
        make_run(s, run_id="manual__1")
    with db.tx() as s:
        with pytest.raises(DagRunAlreadyExists, match=r"DAG 'etl' already has a run 'manual__1'"):
            create_dag_run(s, dag_id="etl", run_id="manual__1", run_type="manual", logical_date=day(3))
        # on Postgres a failed INSERT would abort the transaction; this one must still work
        create_dag_run(s, dag_id="etl", run_id="manual__2", run_type="manual", logical_date=day(3))
    with db.tx() as s:
        assert [r.run_id for r in list_dag_runs(s, "etl")] == ["manual__2", "manual__1"]


def test_same_run_id_in_another_dag_is_fine(db: Db) -> None:
    with db.tx() as s:
        make_run(s, dag_id="a", run_id="manual__1")
        make_run(s, dag_id="b", run_id="manual__1")


def test_unknown_run_type_or_state_is_refused(db: Db) -> None:
    with db.tx() as s:
        with pytest.raises(InvalidStateError, match="unknown run_type 'adhoc'"):
            create_dag_run(s, dag_id="etl", run_id="x", run_type="adhoc", logical_date=None)
        with pytest.raises(InvalidStateError, match="unknown DAG run state 'done'"):
            create_dag_run(s, dag_id="etl", run_id="x", run_type="manual", logical_date=None, state="done")


def test_list_runs_filters_by_state_and_type_newest_first(db: Db) -> None:
    with db.tx() as s:
        for n in (1, 3, 2):
            make_run(s, run_id=f"scheduled__{n}", logical_date=day(n), run_type="scheduled",
                     state="success" if n == 1 else "running")
        make_run(s, run_id="manual__x", logical_date=None, state="queued")
    with db.tx() as s:
        assert [r.run_id for r in list_dag_runs(s, "etl")] == [
            "scheduled__3", "scheduled__2", "scheduled__1", "manual__x"]
        assert [r.run_id for r in list_dag_runs(s, "etl", state="running")] == ["scheduled__3", "scheduled__2"]
        assert [r.run_id for r in list_dag_runs(s, "etl", state={"queued", "success"})] == [
            "scheduled__1", "manual__x"]
        assert [r.run_id for r in list_dag_runs(s, "etl", limit=1, newest_first=False)] == ["scheduled__1"]
        assert [r.run_id for r in list_dag_runs(s, run_type="manual")] == ["manual__x"]


def test_run_state_dates_follow_the_state(db: Db) -> None:
    with db.tx() as s:
        make_run(s, run_id="r", state="queued")
        assert set_dag_run_state(s, "etl", "r", "running", at=day(5))
        assert set_dag_run_state(s, "etl", "r", "failed", failed_task="load", at=day(6))
        failed = get_dag_run(s, "etl", "r")
        assert set_dag_run_state(s, "etl", "r", "queued", at=day(7))
        queued = get_dag_run(s, "etl", "r")
    assert failed is not None and (failed.start_date, failed.end_date, failed.failed_task) == (day(5), day(6), "load")
    assert queued is not None and (queued.start_date, queued.end_date, queued.failed_task) == (None, None, None)
    assert queued.queued_at == day(7)


def test_run_state_compare_and_set_only_changes_the_expected_state(db: Db) -> None:
    with db.tx() as s:
        make_run(s, run_id="r", state="queued")
        assert set_dag_run_state(s, "etl", "r", "running", expected_state="queued")
        assert not set_dag_run_state(s, "etl", "r", "running", expected_state="queued")
        assert not set_dag_run_state(s, "etl", "missing", "running")


def test_count_active_runs_counts_queued_and_running(db: Db) -> None:
    with db.tx() as s:
        for n, state in enumerate(("queued", "running", "running", "success", "failed")):
            make_run(s, run_id=f"r{n}", state=state)
        make_run(s, dag_id="other", run_id="r9", state="running")
        assert count_active_runs(s, "etl") == 3
        assert count_active_runs(s, "etl", only_running=True) == 2


def test_deleting_a_run_deletes_its_task_instances(db: Db) -> None:
    with db.tx() as s:
        make_run(s, run_id="r", tasks=("a", "b"))
        create_task_instances(s, "etl", "r", [TaskSpec("c", map_index=0)])
        assert delete_dag_run(s, "etl", "r")
        assert s.scalar(select(func.count()).select_from(TaskInstanceORM.__table__)) == 0
