"""`chain100`: 100 no-op PythonOperator tasks in a chain, run with `nbflow dags test`.

`seconds` is the median wall time of the whole command in a fresh process (`nbflow dags test chain100`,
interpreter start and imports included) over 5 runs after one warm-up run; Airflow 3.3's `dags test`
needs 10.9 s for the same DAG on this machine. `in_process_seconds` is the median duration of the run
itself (`run_dag_in_process`, logs written, nothing echoed) in this process after a warm-up run.
`command_cpu_seconds` is the command's CPU time (user + system), which a busy machine inflates less.

The same chain under a warm `nbflow scheduler` with the local executor (issue #4's `chain100`,
trigger to run end) is reported too, as `scheduler_seconds`, `scheduler_runs` and
`scheduler_cpu_seconds`; `python -m benchmarks sched_chain100` measures only that.
"""
from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks._util import REPO, python_env, scratch_dir

RUNS = 5
DAG_FILE = '''
from datetime import datetime
from nbflow import DAG
from nbflow.models.baseoperator import chain
from nbflow.operators.python import PythonOperator


def noop():
    return None


with DAG("chain100", schedule=None, start_date=datetime(2025, 1, 1)):
    chain(*[PythonOperator(task_id=f"t{i}", python_callable=noop) for i in range(100)])
'''


def _command_seconds(folder: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one `nbflow dags test chain100` process."""
    env = {k: v for k, v in python_env().items() if not k.startswith("NBFLOW_")}
    env.update({"NBFLOW_HOME": str(folder / "home"), "NBFLOW__CORE__DAGS_FOLDER": str(folder / "dags")})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbflow.cli.main", "dags", "test", "chain100", "2025-01-02"],
                   cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _in_process_seconds(folder: Path) -> float:
    from nbflow.runtime.dagbag import DagBag
    from nbflow.runtime.inprocess import make_run_info, run_dag_in_process
    dag = DagBag(folder / "dags", import_timeout=30).get_dag("chain100")
    run = make_run_info(dag, datetime(2025, 1, 2, tzinfo=timezone.utc), {})
    result = run_dag_in_process(dag, run=run, log_folder=folder / "home" / "logs-in-process")
    assert result.state == "success", result
    return result.duration


def run() -> dict[str, object]:
    folder = scratch_dir("chain100")
    (folder / "dags").mkdir()
    (folder / "dags" / "chain100.py").write_text(DAG_FILE)
    _command_seconds(folder)  # warm-up: bytecode caches
    measured = [_command_seconds(folder) for _ in range(RUNS)]
    command = [wall for wall, _ in measured]
    _in_process_seconds(folder)
    in_process = [_in_process_seconds(folder) for _ in range(RUNS)]
    return {
        "seconds": round(statistics.median(command), 4),
        "in_process_seconds": round(statistics.median(in_process), 4),
        "command_min_seconds": round(min(command), 4),
        "command_cpu_seconds": round(statistics.median(cpu for _, cpu in measured), 4),
        "tasks": 100,
        "runs": RUNS,
        "command": "nbflow dags test chain100 2025-01-02",
        **_under_the_scheduler(),
    }


def _under_the_scheduler() -> dict[str, object]:
    from benchmarks import sched_chain100
    measured = sched_chain100.run()
    return {"scheduler_seconds": measured["seconds"], "scheduler_runs": measured["runs"],
            "scheduler_cpu_seconds": measured["cpu_seconds"], "scheduler_executor": measured["executor"]}
