"""`nb20`: 20 chained notebook tasks under the scheduler (local executor), trigger to end, against
sequential `papermill.execute_notebook` of the same 20 notebooks in one process.

Each notebook (notebooks/step.ipynb) is a parameters cell and one compute cell; task i gets task i-1's
recorded value as a parameter. papermill starts and stops a kernel per notebook; nbflow's worker keeps
`notebook.kernel_pool_size` fresh kernels started ahead of need (one kernel per run, never reused).
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from benchmarks._scheduler import measure
from benchmarks._util import REPO, scratch_dir

STEP = REPO / "notebooks" / "step.ipynb"
COUNT = 20

DAG = f'''
from nbflow import DAG
from nbflow.operators.notebook import NotebookOperator
with DAG("nb20", schedule=None):
    previous = None
    for i in range({COUNT}):
        value = previous.output["value"] if previous is not None else 0
        task = NotebookOperator(task_id=f"step{{i}}", input_nb={str(STEP)!r}, parameters={{"value": value, "step": 1}})
        if previous is not None:
            previous >> task
        previous = task
'''


def _check(env: object, run: object) -> None:
    from nbflow.runtime.xcom_db import DbXComStore
    from nbflow.store.keys import TIKey
    from nbflow.utils.serialization import deserialize
    store = DbXComStore(env.sessions)  # type: ignore[attr-defined]
    last = deserialize(store.get(TIKey("nb20", f"step{COUNT - 1}", run.run_id, -1), "value"))  # type: ignore[attr-defined]
    if last != COUNT:
        raise RuntimeError(f"nb20: the last step recorded {last}, expected {COUNT}")


def _papermill(runs: int) -> list[float]:
    import papermill
    out = scratch_dir("nb20_papermill")
    timings = []
    for attempt in range(runs + 1):  # the first is a warm-up, as for the scheduler
        start = time.perf_counter()
        for i in range(COUNT):
            papermill.execute_notebook(str(STEP), str(out / f"step{i}.ipynb"), parameters={"value": i, "step": 1},
                                       progress_bar=False)
        if attempt:
            timings.append(time.perf_counter() - start)
    return timings


def run() -> dict[str, object]:
    runs = int(os.environ.get("NB20_RUNS", "2"))
    # Kernels are child interpreters: give both sides bytecode caching, as users have it (see python_env).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    cwd = Path.cwd()
    papermill = _papermill(runs)
    os.chdir(cwd)
    nbflow = measure("nb20", DAG, "nb20", check=_check, runs=runs)
    seconds, baseline = float(nbflow["seconds"]), statistics.median(papermill)
    print(f"nb20: nbflow (scheduler, local executor) {seconds:.2f} s vs papermill sequential {baseline:.2f} s "
          f"for {COUNT} notebooks; ratio {seconds / baseline:.3f}", flush=True)
    return {**nbflow, "papermill_seconds": round(baseline, 4), "papermill_runs": [round(t, 4) for t in papermill],
            "ratio": round(seconds / baseline, 4),
            "kernel_pool_size": int(os.environ.get("NBFLOW__NOTEBOOK__KERNEL_POOL_SIZE", "2"))}
