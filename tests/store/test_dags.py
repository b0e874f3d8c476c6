"""DAG rows and import errors."""
from __future__ import annotations

import datetime as dt

from nbflow.store.dags import (
    dags_due,
    deactivate_missing_dags,
    get_dag_row,
    list_dags,
    list_import_errors,
    record_import_errors,
    set_next_dagrun,
    set_paused,
    upsert_dag,
)

from .conftest import Db
from .helpers import day


def test_new_dag_is_paused_at_creation_and_refresh_keeps_the_users_choice(db: Db) -> None:
    with db.tx() as s:
        row = upsert_dag(s, dag_id="etl", fileloc="/dags/etl.py", schedule="@daily", tags=["b", "a", "a"])
        assert row.is_paused and row.is_active and row.tags == ["a", "b"]
        assert set_paused(s, "etl", False)
    with db.tx() as s:
        row = upsert_dag(s, dag_id="etl", fileloc="/dags/moved.py", schedule="0 6 * * *", owners="data")
    assert not row.is_paused
    assert (row.fileloc, row.schedule, row.owners, row.tags) == ("/dags/moved.py", "0 6 * * *", "data", [])


def test_dag_can_start_unpaused(db: Db) -> None:
    with db.tx() as s:
        assert not upsert_dag(s, dag_id="etl", fileloc="f.py", is_paused_at_creation=False).is_paused


def test_set_paused_on_unknown_dag_returns_false(db: Db) -> None:
    with db.tx() as s:
        assert set_paused(s, "nope", True) is False
        assert get_dag_row(s, "nope") is None


def test_list_dags_filters_inactive_and_paused(db: Db) -> None:
    with db.tx() as s:
        for dag_id in ("c", "a", "b"):
            upsert_dag(s, dag_id=dag_id, fileloc=f"/dags/{dag_id}.py")
        set_paused(s, "b", False)
        assert deactivate_missing_dags(s, seen_dag_ids=["a", "b"]) == ["c"]
    with db.tx() as s:
        assert [d.dag_id for d in list_dags(s)] == ["a", "b"]
        assert [d.dag_id for d in list_dags(s, include_inactive=True)] == ["a", "b", "c"]
        assert [d.dag_id for d in list_dags(s, paused=False)] == ["b"]
        assert [d.dag_id for d in list_dags(s, dag_ids=["a", "c"], include_inactive=True)] == ["a", "c"]


def test_deactivate_can_be_limited_to_the_files_parsed(db: Db) -> None:
    with db.tx() as s:
        upsert_dag(s, dag_id="a", fileloc="/dags/one.py")
        upsert_dag(s, dag_id="b", fileloc="/dags/two.py")
        assert deactivate_missing_dags(s, seen_dag_ids=[], filelocs=["/dags/one.py"]) == ["a"]
        assert get_dag_row(s, "b").is_active  # type: ignore[union-attr]


def test_import_errors_replace_the_previous_set_and_flag_the_dags(db: Db) -> None:
    with db.tx() as s:
        upsert_dag(s, dag_id="etl", fileloc="/dags/etl.py")
        record_import_errors(s, {"/dags/etl.py": "Traceback: boom", "/dags/x.py": "SyntaxError"})
    with db.tx() as s:
        assert [(e.filename, e.stacktrace) for e in list_import_errors(s)] == [
            ("/dags/etl.py", "Traceback: boom"), ("/dags/x.py", "SyntaxError")]
        assert get_dag_row(s, "etl").has_import_errors  # type: ignore[union-attr]
        record_import_errors(s, {"/dags/y.py": "NameError"})
    with db.tx() as s:
        assert [e.filename for e in list_import_errors(s)] == ["/dags/y.py"]
        # a successful parse clears the flag
        assert not upsert_dag(s, dag_id="etl", fileloc="/dags/etl.py").has_import_errors


def test_import_errors_for_some_files_keep_other_files_errors(db: Db) -> None:
    with db.tx() as s:
        record_import_errors(s, {"/dags/a.py": "A", "/dags/b.py": "B"})
        record_import_errors(s, {"/dags/c.py": "C"}, filenames=["/dags/a.py", "/dags/c.py"])
        assert [e.filename for e in list_import_errors(s)] == ["/dags/b.py", "/dags/c.py"]


def test_dags_due_lists_unpaused_active_dags_whose_next_run_may_be_created(db: Db) -> None:
    with db.tx() as s:
        for dag_id, due in (("late", day(1)), ("soon", day(9)), ("paused", day(1))):
            upsert_dag(s, dag_id=dag_id, fileloc=f"/dags/{dag_id}.py", is_paused_at_creation=dag_id == "paused")
            set_next_dagrun(s, dag_id, next_dagrun=due - dt.timedelta(days=1),
                            data_interval=(due - dt.timedelta(days=1), due), create_after=due)
    with db.tx() as s:
        due = dags_due(s, now=day(2))
    assert [d.dag_id for d in due] == ["late"]
    assert due[0].next_dagrun_data_interval_end == day(1) and due[0].next_dagrun_create_after == day(1)
