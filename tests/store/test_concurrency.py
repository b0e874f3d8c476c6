"""Concurrent writers: no lost updates, no "database is locked", exactly one winner per compare-and-set."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

import nbflow.store
from nbflow.store.engine import make_engine, make_session_factory, session_scope
from nbflow.store.keys import TaskSpec
from nbflow.store.migrate import init_db
from nbflow.store.models import DagRunORM
from nbflow.store.pools import get_pool, set_pool
from nbflow.store.runs import create_dag_run
from nbflow.store.task_instances import create_task_instances, get_task_instance, get_task_instances
from nbflow.store.ti_state import set_task_state, set_task_states

from .conftest import Db
from .helpers import key, make_run

WORKERS = 8
ITERATIONS = 60
REPO = Path(nbflow.store.__file__).parents[2]


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_eight_processes_writing_one_sqlite_file_lose_no_update(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nbflow.db'}"
    init_db(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        set_pool(s, "counter", 0)
        create_dag_run(s, dag_id="claims", run_id="r", run_type="manual", logical_date=None)
        create_task_instances(s, "claims", "r", [TaskSpec(f"t{n}") for n in range(ITERATIONS)])
    sync = tmp_path / "sync"
    sync.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("_writer.py")), url, str(w),
                               str(ITERATIONS), str(sync), "1" if w % 2 else "0"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(WORKERS)]
    try:
        _wait_for(lambda: len(list(sync.glob("ready-*"))) == WORKERS or any(p.poll() is not None for p in procs),
                  120, "every writer to start")
        (sync / "go").touch()
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    errors = [f"worker {w} exit {p.returncode}: {err}"
              for w, (p, (_, err)) in enumerate(zip(procs, results, strict=True)) if p.returncode != 0]
    assert errors == []
    assert not any("locked" in err for _, err in results)
    with session_scope(factory) as s:
        counter = get_pool(s, "counter")
        runs = s.scalar(select(func.count()).select_from(DagRunORM.__table__).where(
            DagRunORM.__table__.c.dag_id == "load"))
        claimed = get_task_instances(s, "claims", "r")
    engine.dispose()
    assert counter is not None and counter.slots == WORKERS * ITERATIONS
    assert runs == WORKERS * ITERATIONS
    assert sum(int(out) for out, _ in results) == ITERATIONS  # each claim won exactly once
    assert all(t.state == "queued" and t.queued_by_job_id is not None for t in claimed)


def _race(db: Db, contenders: int, attempt) -> list[object]:  # type: ignore[no-untyped-def]
    """Run `attempt(session, n)` in `contenders` threads at once, each in its own transaction that
    lingers before committing, so the others' updates must wait for it; their results by n."""
    barrier = threading.Barrier(contenders)
    results: list[object] = [None] * contenders
    failures: list[BaseException] = []

    def contend(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            with session_scope(db.factory) as s:
                results[n] = attempt(s, n)
                time.sleep(0.02)
        except BaseException as err:  # noqa: BLE001 - reported below
            failures.append(err)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == [] and not any(t.is_alive() for t in threads)
    return results


def test_racing_compare_and_set_has_exactly_one_winner(db: Db) -> None:
    rounds = 8
    with db.tx() as s:
        make_run(s, tasks=tuple(f"t{r}" for r in range(rounds)))
        set_task_states(s, [key(f"t{r}") for r in range(rounds)], "scheduled")
    for r in range(rounds):
        k = key(f"t{r}")
        won = _race(db, 4, lambda s, n, k=k: set_task_state(s, k, "queued", expected_state="scheduled",
                                                            queued_by_job_id=n))
        assert won.count(True) == 1 and won.count(False) == 3
        with db.tx() as s:
            ti = get_task_instance(s, k)
        assert ti is not None and ti.state == "queued" and ti.queued_by_job_id == won.index(True)


def test_racing_bulk_compare_and_set_splits_the_instances(db: Db) -> None:
    tasks = [f"t{n}" for n in range(40)]
    with db.tx() as s:
        make_run(s, tasks=tuple(tasks))
    keys = [key(t) for t in tasks]
    won = _race(db, 3, lambda s, n: set_task_states(s, keys[n * 10:], "scheduled", expected_state=None))
    claimed = [k for keys_won in won for k in keys_won]  # type: ignore[attr-defined]
    assert sorted(claimed) == sorted(keys)  # every instance claimed once, none twice
