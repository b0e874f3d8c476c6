"""Task instances: bulk creation, compare-and-set state changes, heartbeats, orphans, clearing."""
from __future__ import annotations

import datetime as dt

import pytest

from nbflow.exceptions import DagRunNotFound, InvalidStateError
from nbflow.store.keys import TaskSpec, TIKey
from nbflow.store.runs import get_dag_run, set_dag_run_state
from nbflow.store.task_instances import (
    clear_task_instances,
    count_task_instances,
    create_task_instances,
    find_orphaned_task_instances,
    get_task_instance,
    get_task_instances,
    task_instances_in_state,
)
from nbflow.store.ti_state import get_task_history, heartbeat_task, set_task_state, set_task_states

from .conftest import Db
from .helpers import day, key, make_run


def test_two_thousand_task_instances_are_created_in_one_bulk_insert(db: Db) -> None:
    specs = [TaskSpec(f"t{n:04d}", max_tries=2, pool="p", pool_slots=1, priority_weight=n, operator="PythonOperator",
                      queue="q") for n in range(1_000)]
    specs += [TaskSpec("mapped", map_index=i) for i in range(1_000)]
    inserts: list[int] = []
    from sqlalchemy import event

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO task_instance"):
            inserts.append(len(parameters) if executemany else 1)

    event.listen(db.engine, "before_cursor_execute", count)
    with db.tx() as s:
        make_run(s, run_id="big")
        assert create_task_instances(s, "etl", "big", specs) == 2_000
    event.remove(db.engine, "before_cursor_execute", count)
    assert inserts == [2_000]  # one executemany, not 2,000 statements
    with db.tx() as s:
        rows = get_task_instances(s, "etl", "big")
    assert len(rows) == 2_000
    first = rows[0]
    assert (first.task_id, first.map_index, first.state, first.try_number, first.max_tries, first.pool,
            first.priority_weight, first.operator, first.queue) == ("mapped", 0, None, 0, 0, "default_pool", 1,
                                                                  None, "default")
    assert rows[-1].key == TIKey("etl", "t0999", "big") and rows[-1].priority_weight == 999


def test_task_instances_need_an_existing_run(db: Db) -> None:
    with db.tx() as s, pytest.raises(DagRunNotFound, match="DAG 'etl' has no run 'nope'"):
        create_task_instances(s, "etl", "nope", [TaskSpec("a")])


def test_skip_existing_adds_only_new_tasks(db: Db) -> None:
    with db.tx() as s:
        make_run(s, run_id="r", tasks=("a",))
        set_task_state(s, key("a", "r"), "running")
        create_task_instances(s, "etl", "r", [TaskSpec("a"), TaskSpec("b")], skip_existing=True)
        assert [(t.task_id, t.state) for t in get_task_instances(s, "etl", "r")] == [("a", "running"), ("b", None)]


def test_compare_and_set_changes_only_from_the_expected_state(db: Db) -> None:
    k = key("a")
    with db.tx() as s:
        make_run(s, tasks=("a",))
        assert set_task_state(s, k, "scheduled", expected_state=None)  # None means "no status yet"
        assert not set_task_state(s, k, "scheduled", expected_state=None)
        assert not set_task_state(s, k, "running", expected_state="queued")
        assert set_task_state(s, k, "queued", expected_state={"scheduled", "up_for_retry"}, queued_by_job_id=7)
        ti = get_task_instance(s, k)
    assert ti is not None and ti.state == "queued" and ti.queued_by_job_id == 7 and ti.queued_dttm is not None


def test_state_change_on_missing_instance_returns_false(db: Db) -> None:
    with db.tx() as s:
        make_run(s)
        assert not set_task_state(s, key("ghost"), "running")


def test_bad_state_or_column_is_refused(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("a",))
        with pytest.raises(InvalidStateError, match="unknown state 'done'"):
            set_task_state(s, key("a"), "done")
        with pytest.raises(InvalidStateError, match="no settable column colour"):
            set_task_state(s, key("a"), "running", colour="red")
        with pytest.raises(InvalidStateError, match="no settable column task_id"):
            set_task_state(s, key("a"), "running", task_id="b")


def test_attempt_dates_duration_try_number_and_history(db: Db) -> None:
    k = key("a")
    start, end = day(3), day(3) + dt.timedelta(seconds=90, microseconds=500_000)
    with db.tx() as s:
        make_run(s, tasks=("a",))
        set_task_state(s, k, "queued")
        assert set_task_state(s, k, "running", expected_state="queued", increment_try_number=True, at=start,
                              hostname="h1", pid=42)
        running = get_task_instance(s, k)
        assert set_task_state(s, k, "up_for_retry", expected_state="running", at=end, next_retry_at=day(4))
        retry = get_task_instance(s, k)
    assert running is not None and (running.try_number, running.start_date, running.last_heartbeat_at,
                                    running.hostname, running.pid) == (1, start, start, "h1", 42)
    assert retry is not None and retry.end_date == end and retry.next_retry_at == day(4)
    assert retry.duration == pytest.approx(90.5, abs=1e-3)
    with db.tx() as s:
        set_task_state(s, k, "running", increment_try_number=True, at=day(4))
        set_task_state(s, k, "success", at=day(4) + dt.timedelta(seconds=2))
        history = get_task_history(s, k)
    assert [(h.try_number, h.state, h.hostname) for h in history] == [(1, "up_for_retry", "h1"), (2, "success", "h1")]
    assert history[1].duration == pytest.approx(2.0, abs=1e-3)


def test_skipping_an_instance_that_never_ran_records_no_attempt(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("a",))
        set_task_state(s, key("a"), "skipped", expected_state=None)
        assert get_task_history(s, key("a")) == []
        assert get_task_instance(s, key("a")).duration is None  # type: ignore[union-attr]


def test_bulk_compare_and_set_returns_the_keys_it_won(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("a", "b", "c"))
        set_task_state(s, key("b"), "running")
        won = set_task_states(s, [key("c"), key("a"), key("b")], "scheduled", expected_state=None)
        assert won == [key("a"), key("c")]
        assert set_task_states(s, [], "scheduled") == []
        assert count_task_instances(s, "scheduled", dag_id="etl") == 2


def test_instances_in_state_are_ordered_by_priority(db: Db) -> None:
    with db.tx() as s:
        make_run(s, run_id="r")
        create_task_instances(s, "etl", "r", [TaskSpec("low", priority_weight=1), TaskSpec("high", priority_weight=9)])
        set_task_states(s, [key("low", "r"), key("high", "r")], "scheduled")
        assert [t.task_id for t in task_instances_in_state(s, "scheduled")] == ["high", "low"]
        assert [t.task_id for t in task_instances_in_state(s, "scheduled", limit=1)] == ["high"]


def test_heartbeat_succeeds_only_while_running(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("a",))
        assert not heartbeat_task(s, key("a"))
        set_task_state(s, key("a"), "running", at=day(3))
        assert heartbeat_task(s, key("a"), at=day(4))
        assert get_task_instance(s, key("a")).last_heartbeat_at == day(4)  # type: ignore[union-attr]
        clear_task_instances(s, "etl", "manual__2025-01-02", ["a"])
        assert not heartbeat_task(s, key("a"))  # cleared: the process should stop


def test_orphans_are_running_instances_with_an_old_heartbeat(db: Db) -> None:
    now = day(10)
    with db.tx() as s:
        make_run(s, tasks=("fresh", "stale", "never_beat", "done", "queued_old"))
        set_task_state(s, key("fresh"), "running", at=now - dt.timedelta(seconds=5))
        set_task_state(s, key("stale"), "running", at=now - dt.timedelta(minutes=10))
        heartbeat_task(s, key("stale"), at=now - dt.timedelta(seconds=31))
        set_task_state(s, key("never_beat"), "running", at=now - dt.timedelta(minutes=5),
                       last_heartbeat_at=None)
        set_task_state(s, key("done"), "success", at=now - dt.timedelta(hours=1))
        set_task_state(s, key("queued_old"), "queued", at=now - dt.timedelta(hours=1))
    with db.tx() as s:
        orphans = find_orphaned_task_instances(s, older_than=dt.timedelta(seconds=30), now=now)
        with_queued = find_orphaned_task_instances(s, older_than=now - dt.timedelta(seconds=30),
                                                   states=("running", "queued"))
    assert [o.task_id for o in orphans] == ["never_beat", "stale"]
    assert [o.task_id for o in with_queued] == ["never_beat", "queued_old", "stale"]


def test_clear_resets_state_keeps_try_number_and_requeues_a_finished_run(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("a", "b", "c"), state="running")
        for task, final in (("a", "success"), ("b", "failed"), ("c", "success")):
            set_task_state(s, key(task), "running", increment_try_number=True)
            set_task_state(s, key(task), final)
        set_dag_run_state(s, "etl", "manual__2025-01-02", "failed", failed_task="b")
    with db.tx() as s:
        assert clear_task_instances(s, "etl", "manual__2025-01-02", ["a", "b"], retries={"b": 2}) == 2
    with db.tx() as s:
        tis = {t.task_id: t for t in get_task_instances(s, "etl", "manual__2025-01-02")}
        run = get_dag_run(s, "etl", "manual__2025-01-02")
    assert [(tis[t].state, tis[t].try_number, tis[t].max_tries) for t in "abc"] == [
        (None, 1, 0), (None, 1, 3), ("success", 1, 0)]
    assert run is not None and (run.state, run.failed_task, run.end_date) == ("queued", None, None)


def test_clear_leaves_a_running_run_running_and_can_clear_everything(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("a", "b"), state="running")
        set_task_states(s, [key("a"), key("b")], "failed")
        assert clear_task_instances(s, "etl", "manual__2025-01-02") == 2
        assert get_dag_run(s, "etl", "manual__2025-01-02").state == "running"  # type: ignore[union-attr]
        assert count_task_instances(s, None, run_id="manual__2025-01-02") == 2
        with pytest.raises(DagRunNotFound):
            clear_task_instances(s, "etl", "missing", ["a"])


def test_clearing_a_running_instance_makes_it_restarting_until_its_attempt_stops(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("a", "b"), state="running")
        set_task_state(s, key("a"), "running", increment_try_number=True)
        set_task_state(s, key("b"), "failed")
        assert clear_task_instances(s, "etl", "manual__2025-01-02", retries={"a": 1, "b": 1}) == 2
        a, b = (get_task_instance(s, key(t)) for t in "ab")
    assert (a.state, a.try_number, a.max_tries) == ("restarting", 1, 2)  # type: ignore[union-attr]
    assert b.state is None  # type: ignore[union-attr]
    with db.tx() as s:
        assert not heartbeat_task(s, key("a"), try_number=1)  # its supervisor stops it
        assert [o.task_id for o in find_orphaned_task_instances(s, older_than=day(999))] == ["a"]


def test_a_heartbeat_or_a_result_of_an_earlier_try_does_not_land_on_a_later_one(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("a",), state="running")
        set_task_state(s, key("a"), "running", increment_try_number=True)
        set_task_state(s, key("a"), "running", increment_try_number=True)  # try 2 runs now
        assert not heartbeat_task(s, key("a"), try_number=1)
        assert heartbeat_task(s, key("a"), try_number=2)
        assert not set_task_state(s, key("a"), "success", expected_state="running", expected_try_number=1)
        assert set_task_state(s, key("a"), "success", expected_state="running", expected_try_number=2)
        assert [h.try_number for h in get_task_history(s, key("a"))] == [2]
