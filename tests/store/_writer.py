"""One writer process for test_concurrency: many short transactions against a shared SQLite file.

Run as a script (not imported by pytest): `python _writer.py URL WORKER ITERATIONS SYNC_DIR NULL_POOL`.
Each iteration is three transactions: a read-modify-write of a counter (a lost update would make
the final count short), a new DAG run, and a compare-and-set claim of a task instance that every
worker tries to claim. No retry helper is used: any "database is locked" fails the worker.
Prints the number of claims this worker won.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


def main(url: str, worker: int, iterations: int, sync_dir: Path, null_pool: bool) -> int:
    from nbflow.store.engine import make_engine, make_session_factory, session_scope
    from nbflow.store.keys import TIKey
    from nbflow.store.pools import get_pool, set_pool
    from nbflow.store.runs import create_dag_run
    from nbflow.store.ti_state import set_task_state

    engine = make_engine(url, null_pool=null_pool)
    factory = make_session_factory(engine)
    readers = make_session_factory(engine, read_only=True)
    (sync_dir / f"ready-{worker}").touch()
    deadline = time.monotonic() + 120
    while not (sync_dir / "go").exists():  # start together, so the transactions really interleave
        if time.monotonic() > deadline:
            print("never told to start", file=sys.stderr)
            return 3
        time.sleep(0.002)
    wins = 0
    for n in range(iterations):
        with session_scope(factory) as s:
            pool = get_pool(s, "counter")
            assert pool is not None
            set_pool(s, "counter", pool.slots + 1)
        with session_scope(factory) as s:
            create_dag_run(s, dag_id="load", run_id=f"w{worker}-{n}", run_type="manual", logical_date=None)
        with session_scope(factory) as s:
            claim = TIKey("claims", f"t{n}", "r")
            wins += set_task_state(s, claim, "queued", expected_state=None, queued_by_job_id=worker)
        with session_scope(readers) as s:
            get_pool(s, "counter")
    engine.dispose()
    print(wins)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5] == "1"))
