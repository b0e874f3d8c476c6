"""Pools and their slots in use; jobs and their heartbeats."""
from __future__ import annotations

import datetime as dt

import pytest

from nbflow.exceptions import MetadataDatabaseError
from nbflow.store.jobs import alive_jobs, end_job, get_job, heartbeat_job, is_job_alive, start_job
from nbflow.store.keys import TaskSpec
from nbflow.store.pools import delete_pool, get_pool, list_pools, lock_pools, pool_slots_in_use, set_pool
from nbflow.store.task_instances import create_task_instances
from nbflow.store.ti_state import set_task_state

from .conftest import Db
from .helpers import day, key, make_run


def test_set_get_list_and_delete_pools(db: Db) -> None:
    with db.tx() as s:
        set_pool(s, "gpu", 2, "two cards")
        set_pool(s, "gpu", 4, "four cards", include_deferred=True)
        assert get_pool(s, "gpu") == get_pool(s, "gpu")
        gpu = get_pool(s, "gpu")
        assert gpu is not None and (gpu.slots, gpu.description, gpu.include_deferred) == (4, "four cards", True)
        assert [p.pool for p in list_pools(s)] == ["default_pool", "gpu"]
        assert delete_pool(s, "gpu") and not delete_pool(s, "gpu")
        with pytest.raises(MetadataDatabaseError, match="cannot be deleted"):
            delete_pool(s, "default_pool")
        with pytest.raises(MetadataDatabaseError, match="slots must be -1"):
            set_pool(s, "bad", -5)


def test_slots_in_use_sum_queued_and_running_instances_by_pool(db: Db) -> None:
    with db.tx() as s:
        set_pool(s, "gpu", 4)
        set_pool(s, "deferring", 4, include_deferred=True)
        make_run(s, run_id="r")
        create_task_instances(s, "etl", "r", [
            TaskSpec("q", pool="gpu", pool_slots=2), TaskSpec("run", pool="gpu", pool_slots=1),
            TaskSpec("done", pool="gpu", pool_slots=3), TaskSpec("d1", pool="gpu", pool_slots=1),
            TaskSpec("d2", pool="deferring", pool_slots=2), TaskSpec("plain")])
        for task, state in (("q", "queued"), ("run", "running"), ("done", "success"), ("d1", "deferred"),
                            ("d2", "deferred"), ("plain", "running")):
            set_task_state(s, key(task, "r"), state)
        lock_pools(s)
        assert pool_slots_in_use(s) == {"gpu": 3, "deferring": 2, "default_pool": 1}


def test_job_lifecycle_and_liveness(db: Db) -> None:
    t0 = day(5)
    with db.tx() as s:
        job = start_job(s, "scheduler", hostname="box", pid=123, at=t0)
        other = start_job(s, "scheduler", hostname="box", pid=124, at=t0 - dt.timedelta(minutes=5))
        assert heartbeat_job(s, job.id, at=t0 + dt.timedelta(seconds=10))
        grace = dt.timedelta(seconds=30)
        assert is_job_alive(s, job.id, grace=grace, now=t0 + dt.timedelta(seconds=35))
        assert not is_job_alive(s, job.id, grace=grace, now=t0 + dt.timedelta(seconds=41))
        assert [j.id for j in alive_jobs(s, "scheduler", grace=grace, now=t0 + dt.timedelta(seconds=20))] == [job.id]
        assert end_job(s, job.id, at=t0 + dt.timedelta(minutes=1))
        assert not end_job(s, job.id) and not heartbeat_job(s, job.id)
        assert not is_job_alive(s, job.id, grace=grace, now=t0 + dt.timedelta(seconds=11))
        assert not is_job_alive(s, 999_999, grace=grace)
        ended = get_job(s, job.id)
    assert ended is not None
    assert (ended.state, ended.end_date, ended.pid) == ("success", t0 + dt.timedelta(minutes=1), 123)
    assert other.id != job.id
