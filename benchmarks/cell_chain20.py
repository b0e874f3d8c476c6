"""`cell_chain20`: 20 chained `%%task` cells (each returns its upstream + 1) under the in-kernel scheduler,
trigger to run end, against the same 20 tasks as a `.py` DAG file (what `%dag export` writes) under the
scheduler with the local executor. Goal: the cells within 1.5x of the file.

The cells are defined in a real IPython shell (IPython.testing.globalipapp, in process) and run by
`%nbflow scheduler start`: the scheduler thread in that process, the worker spawned beside it, each attempt
forked from the worker, the DAG travelling as cell text with each workload. Both sides: heartbeat 1 s,
parallelism 4, one warm-up run, then the median of 3; each side in a fresh interpreter.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks._util import REPO, python_env, scratch_dir

COUNT, RUNS = 20, 3


def cells() -> list[str]:
    out = ["%%dag cell_chain20\npass", "%%task t0\n1"]
    out += [f"%%task t{i} --upstream t{i - 1}\nt{i - 1} + 1" for i in range(1, COUNT)]
    return out


def _settings(folder) -> None:
    os.environ.update({"NBFLOW_HOME": str(folder / "home"), "NBFLOW__CORE__DAGS_FOLDER": str(folder / "dags"),
                       "NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
                       "NBFLOW__CORE__PARALLELISM": os.environ.get("NBFLOW__CORE__PARALLELISM", "4"),
                       "NBFLOW__SCHEDULER__HEARTBEAT_SEC": "1"})
    (folder / "dags").mkdir()
    os.chdir(folder)


def _kernel() -> dict[str, object]:
    from IPython.testing.globalipapp import get_ipython

    from nbflow.jupyter.magics import NbflowMagics
    from nbflow.runtime import api

    _settings(scratch_dir("cell_chain20_kernel"))
    shell = get_ipython()
    magics = NbflowMagics(shell)
    shell.register_magics(magics)

    def cell(text: str) -> object:
        result = shell.run_cell(text, store_history=False)
        if result.error_before_exec or result.error_in_exec:
            raise RuntimeError(f"{text.splitlines()[0]}: {result.error_before_exec or result.error_in_exec}")
        return result.result

    for text in cells():
        cell(text)
    cell("%nbflow scheduler start")
    scheduler = magics._scheduler.scheduler
    env = magics.env
    timings, triggers, durations = [], [], []
    for attempt in range(RUNS + 1):
        start = time.perf_counter()
        cell("%dag run cell_chain20 --no-widget")
        scheduler.executor.wakeup.set()  # as benchmarks/_scheduler.py does for the file DAG
        triggered = time.perf_counter() - start
        run_id = api.list_runs(env, "cell_chain20", limit=1)[0].run_id
        while (state := api.get_run(env, "cell_chain20", run_id).state) not in ("success", "failed"):
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        if state != "success" or cell(f"%xcom cell_chain20 t{COUNT - 1} --run {run_id}") != COUNT:
            raise RuntimeError(f"cell_chain20 run {run_id} ended {state}")
        if attempt:
            timings.append(elapsed)
            triggers.append(triggered)
            row = api.get_run(env, "cell_chain20", run_id)
            durations.append((row.end_date - row.start_date).total_seconds())
    cell("%nbflow scheduler stop")
    return {"seconds": statistics.median(timings), "runs": timings, "trigger_seconds": statistics.median(triggers),
            "run_seconds": statistics.median(durations)}


def _file() -> dict[str, object]:
    from benchmarks._scheduler import measure
    from nbflow.runtime.magic_cells import magic_cells_of
    from nbflow.runtime.notebook_export import export_python

    parsed = [c for text in cells() for c in magic_cells_of(text)]
    text = export_python(parsed, "cell_chain20", where="benchmarks/cell_chain20.py")
    return measure("cell_chain20_file", text, "cell_chain20", runs=RUNS)


def _child(side: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.cell_chain20", side], cwd=REPO, env=python_env(),
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> dict[str, object]:
    kernel, file = _child("kernel"), _child("file")
    return {
        "seconds": round(kernel["seconds"], 4),
        "runs": [round(t, 4) for t in kernel["runs"]],
        "file_dag_seconds": round(file["seconds"], 4),
        "file_dag_runs": file["runs"],
        "ratio": round(kernel["seconds"] / file["seconds"], 2),
        "dag_run_magic_seconds": round(kernel["trigger_seconds"], 4),  # the `%dag run` cell itself
        "run_start_to_end_seconds": round(kernel["run_seconds"], 4),  # the run row's own start to end
        "goal_ratio": 1.5,
        "tasks": COUNT,
    }


if __name__ == "__main__":
    side = sys.argv[1]
    result = _kernel() if side == "kernel" else _file()
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
