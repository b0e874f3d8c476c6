"""XComs: set, overwrite, pull across tasks, map indexes and prior runs."""
from __future__ import annotations

import json

from nbflow.store.runs import delete_dag_run
from nbflow.store.xcoms import delete_xcoms_for, get_values_of_tasks, get_xcom, get_xcoms, set_xcom

from .conftest import Db
from .helpers import day, key, make_run


def test_set_get_and_overwrite(db: Db) -> None:
    k = key("extract")
    with db.tx() as s:
        run = make_run(s, tasks=("extract",))
        set_xcom(s, k, "return_value", json.dumps({"rows": 1}), at=day(3))
    with db.tx() as s:
        set_xcom(s, k, "return_value", json.dumps({"rows": 2}), at=day(4))
    with db.tx() as s:
        row = get_xcom(s, k)
        assert get_xcom(s, k, "other") is None
    assert row is not None and json.loads(row.value) == {"rows": 2}
    assert row.timestamp == day(4) and row.dag_run_id == run.id


def test_get_xcoms_filters_tasks_keys_and_map_indexes(db: Db) -> None:
    with db.tx() as s:
        make_run(s)
        for task, index, xkey, value in (("a", -1, "return_value", 1), ("b", -1, "return_value", 2),
                                         ("b", -1, "extra", 3), ("m", 0, "return_value", 10),
                                         ("m", 1, "return_value", 11), ("m", 2, "return_value", 12)):
            set_xcom(s, key(task, map_index=index), xkey, json.dumps(value))
    with db.tx() as s:
        def values(**kw: object) -> list[int]:
            return [json.loads(r.value) for r in get_xcoms(s, "etl", "manual__2025-01-02", **kw)]  # type: ignore[arg-type]

        assert values(task_ids=["b", "a"]) == [1, 2]
        assert values(task_ids="b", key=None) == [3, 2]  # ordered by key within a task
        assert values(task_ids="m", map_indexes=[2, 0]) == [10, 12]
        assert values(task_ids="m", map_indexes=1) == [11]
        assert values() == [1, 2, 10, 11, 12]


def test_include_prior_dates_returns_earlier_runs_newest_first(db: Db) -> None:
    with db.tx() as s:
        for n in (1, 2, 3):
            make_run(s, run_id=f"r{n}", logical_date=day(n))
            set_xcom(s, key("t", f"r{n}"), "return_value", json.dumps(n))
        make_run(s, dag_id="other", run_id="r1", logical_date=day(1))
        set_xcom(s, key("t", "r1", dag_id="other"), "return_value", json.dumps(99))
    with db.tx() as s:
        only_this = get_xcoms(s, "etl", "r2", ["t"], "return_value")
        prior = get_xcoms(s, "etl", "r2", ["t"], "return_value", include_prior_dates=True)
        explicit = get_xcoms(s, "etl", "r1", ["t"], "return_value", include_prior_dates=True, logical_date=day(3))
    assert [json.loads(r.value) for r in only_this] == [2]
    assert [json.loads(r.value) for r in prior] == [2, 1]
    assert [json.loads(r.value) for r in explicit] == [3, 2, 1]


def test_include_prior_dates_for_a_run_without_logical_date_sees_only_that_run(db: Db) -> None:
    with db.tx() as s:
        make_run(s, run_id="old", logical_date=day(1))
        set_xcom(s, key("t", "old"), "return_value", "1")
        make_run(s, run_id="adhoc", logical_date=None)
        set_xcom(s, key("t", "adhoc"), "return_value", "2")
        assert [r.value for r in get_xcoms(s, "etl", "adhoc", "t", include_prior_dates=True)] == ["2"]


def test_delete_xcoms_for_one_instance_and_cascade_with_the_run(db: Db) -> None:
    with db.tx() as s:
        make_run(s)
        set_xcom(s, key("a"), "return_value", "1")
        set_xcom(s, key("a"), "k2", "2")
        set_xcom(s, key("b"), "return_value", "3")
        assert delete_xcoms_for(s, key("a")) == 2
        assert [r.task_id for r in get_xcoms(s, "etl", "manual__2025-01-02", key=None)] == ["b"]
        delete_dag_run(s, "etl", "manual__2025-01-02")
        assert get_xcoms(s, "etl", "manual__2025-01-02", key=None) == []


def test_values_of_tasks_reads_unmapped_return_values_of_the_tasks_named(db: Db) -> None:
    with db.tx() as s:
        make_run(s)
        for task, index, xkey, value in (("a", -1, "return_value", 1), ("b", -1, "return_value", 2),
                                         ("b", -1, "extra", 3), ("m", 0, "return_value", 10),
                                         ("c", -1, "return_value", 4)):
            set_xcom(s, key(task, map_index=index), xkey, json.dumps(value))
    with db.tx() as s:
        found = get_values_of_tasks(s, "etl", "manual__2025-01-02", ["a", "b", "m", "missing"])
    assert {task: json.loads(v) for task, v in found.items()} == {"a": 1, "b": 2}
