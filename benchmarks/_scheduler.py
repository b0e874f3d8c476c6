"""Measure one DAG run under a warm `nbflow scheduler` with the local executor: trigger to run end."""
from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._util import scratch_dir


def measure(name: str, dag_text: str, dag_id: str, *, check: Any = None, runs: int = 3) -> dict[str, object]:
    folder = scratch_dir(name)
    dags = folder / "dags"
    dags.mkdir()
    (dags / f"{dag_id}.py").write_text(dag_text)
    os.environ.update({"NBFLOW_HOME": str(folder / "home"), "NBFLOW__CORE__DAGS_FOLDER": str(dags),
                       "NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
                       "NBFLOW__CORE__PARALLELISM": os.environ.get("NBFLOW__CORE__PARALLELISM", "4"),
                       "NBFLOW__SCHEDULER__HEARTBEAT_SEC": "1"})
    os.chdir(folder)
    from nbflow.configuration import load_config
    from nbflow.runtime import api

    env = api.Environment.from_config(load_config())
    api.init_database(env)
    scheduler = api.make_scheduler(env, executor="local")
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    while scheduler.job_id is None:
        time.sleep(0.01)
    # one warm-up run (the worker parses the DAG file, SQLite warms its caches)
    timings, loop_marks, cpu = [], [], []
    for attempt in range(runs + 1):
        before = len(scheduler.loop_stats)
        busy = _busy_seconds()
        start = time.perf_counter()
        run = api.trigger_dag(env, dag_id)
        scheduler.executor.wakeup.set()
        while True:
            state = api.get_run(env, dag_id, run.run_id).state
            if state in ("success", "failed"):
                break
            time.sleep(0.01)  # a light poll: the measured processes share these 2 cores with it
        elapsed = time.perf_counter() - start
        spent = _busy_seconds() - busy
        if state != "success":
            raise RuntimeError(f"{dag_id} run {run.run_id} ended {state}")
        if check is not None:
            check(env, run)
        if attempt:
            timings.append(elapsed)
            cpu.append(spent)
            loop_marks.append([s.seconds for s in scheduler.loop_stats[before:]])
    scheduler.stop()
    thread.join(timeout=60)
    loops = loop_marks[-1] if loop_marks else []
    third = max(len(loops) // 3, 1)
    return {
        "seconds": round(statistics.median(timings), 4),
        "runs": [round(t, 4) for t in timings],
        "cpu_seconds": round(statistics.median(cpu), 3),
        "executor": "local",
        "parallelism": env.config.getint("core", "parallelism"),
        "loops": len(loops),
        "loop_ms_start": round(1000 * statistics.mean(loops[:third]), 2) if loops else None,
        "loop_ms_middle": round(1000 * statistics.mean(loops[third:2 * third] or loops), 2) if loops else None,
        "loop_ms_end": round(1000 * statistics.mean(loops[2 * third:] or loops), 2) if loops else None,
    }


def _busy_seconds() -> float:
    """CPU time the whole machine spent busy (all processes, all cores), from /proc/stat.

    Wall time on a shared 2-core machine varies by ±30% from run to run; the CPU an run costs,
    across the scheduler, the worker and every attempt process, varies much less.
    """
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def home(name: str) -> Path:
    return scratch_dir(name)
