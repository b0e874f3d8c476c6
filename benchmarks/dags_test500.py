"""`dags_test500`: commands about one DAG in parse500's 500-file folder (SQLite, processor's store warm).

`dags test` and `tasks test` import only the file that defines their DAG (issue 14): they should cost
about what the same command costs in a folder of one file, not an import of all 500.
- `dags_test_seconds` / `tasks_test_seconds`: `nbflow dags test gen_000` / `tasks test gen_000 task_0`
  (a fresh process, wall clock), folder unchanged since the last listing; median of 5;
- `dags_test_one_file_seconds`: `dags test` in a folder holding only that file, for scale;
- `dags_pause_seconds`: `nbflow dags pause gen_000` (reads the serialized DAG); median of 5;
- `slow_first_seconds` / `slow_again_seconds`: `dags test` beside a file that sleeps 5 s at import
  (import timeout 2 s): the first pays the processor's deadline once, the next pays nothing for it.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._util import python_env, scratch_dir
from benchmarks.parse500 import FILES, TASKS, TEMPLATE

RUNS = 5


def _folder(root: Path, files: int) -> tuple[dict[str, str], Path]:
    folder, home = root / "dags", root / "home"
    folder.mkdir(parents=True)
    home.mkdir()
    an_hour_ago = time.time() - 3600
    for n in range(files):
        path = folder / f"dag_{n:03d}.py"
        path.write_text(TEMPLATE.format(n=n, tasks=TASKS))
        os.utime(path, (an_hour_ago, an_hour_ago))
    env = python_env()
    env.update({"NBFLOW_HOME": str(home), "NBFLOW__CORE__DAGS_FOLDER": str(folder)})
    _cli(env, "db", "init")
    _cli(env, "dags", "list")
    return env, folder


def _cli(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbflow.cli.main", *args], cwd=env["NBFLOW_HOME"], env=env,
                   capture_output=True, text=True, check=True)
    return time.perf_counter() - start


def _median(env: dict[str, str], *args: str) -> float:
    return statistics.median(_cli(env, *args) for _ in range(RUNS))


def run() -> dict[str, object]:
    root = scratch_dir("dags_test500")
    env, folder = _folder(root / "many", FILES)
    dags_test = _median(env, "dags", "test", "gen_000")
    tasks_test = _median(env, "tasks", "test", "gen_000", "task_0")
    pause = _median(env, "dags", "pause", "gen_000")
    one_env, _ = _folder(root / "one", 1)
    one_file = _median(one_env, "dags", "test", "gen_000")
    (folder / "slow.py").write_text("import time  # nbflow dag\ntime.sleep(5)\n")
    slow_env = {**env, "NBFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "2"}
    slow_first = _cli(slow_env, "dags", "test", "gen_000")
    slow_again = _cli(slow_env, "dags", "test", "gen_000")
    return {
        "seconds": round(dags_test, 4),
        "dags_test_seconds": round(dags_test, 4),
        "tasks_test_seconds": round(tasks_test, 4),
        "dags_pause_seconds": round(pause, 4),
        "dags_test_one_file_seconds": round(one_file, 4),
        "slow_first_seconds": round(slow_first, 4),
        "slow_again_seconds": round(slow_again, 4),
        "files": FILES,
        "tasks_per_file": TASKS,
    }
