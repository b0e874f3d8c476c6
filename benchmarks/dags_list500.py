"""`dags_list500`: `nbflow dags list` and the DAG processor's refresh on parse500's 500 files (SQLite).

- `cold_seconds`: `nbflow dags list` (a fresh process, wall clock) on a fresh database, every file parsed
  in child processes and stored (median of 3 fresh databases); `unchanged_seconds`: the same command again,
  nothing changed (median of 5); `*_cpu_seconds`: the CPU time of those commands, their parsing children
  included (a shared, busy machine inflates wall time far more than CPU time);
- `refresh_cold_seconds` / `refresh_unchanged_seconds`: `dag_processor.refresh` alone, in one process
  with nbflow and SQLAlchemy imported (unchanged: median of 5);
- `import_seconds`: `python -c "import nbflow.cli.main"`-level start-up, for scale (median of 5);
- `startup_profile`: where an unchanged `dags list` spends its time, from `-X importtime` (top modules).
Goals (issue 14): refresh unchanged <= 0.1 s, `dags list` <= 0.3 s cold and <= 0.1 s unchanged.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._util import REPO, python_env, scratch_dir
from benchmarks.parse500 import FILES, TASKS, TEMPLATE

RUNS = 5
COLD_RUNS = 3
REFRESH = '''
import json, sys, time
from pathlib import Path
from nbflow.runtime.dag_processor import ProcessorSettings, refresh
from nbflow.runtime.parse_processes import ParseLimits
from nbflow.store import make_engine, make_session_factory
from nbflow.store.migrate import init_db
import nbflow.operators.python
url = "sqlite:///" + sys.argv[2]
init_db(url)
sessions = make_session_factory(make_engine(url))
settings = ProcessorSettings(Path(sys.argv[1]), ParseLimits(timeout=30, processes=2, max_memory_mb=2048))
start = time.perf_counter()
first = refresh(sessions, settings)
cold = time.perf_counter() - start
assert len(first.parsed) == {files}, first
again = []
for _ in range({runs}):
    start = time.perf_counter()
    result = refresh(sessions, settings)
    again.append(time.perf_counter() - start)
    assert not result.parsed, result
print(json.dumps({{"cold": cold, "unchanged": sorted(again)[len(again) // 2]}}))
'''


def _env(home: Path, folder: Path) -> dict[str, str]:
    env = python_env()
    env.update({"NBFLOW_HOME": str(home), "NBFLOW__CORE__DAGS_FOLDER": str(folder)})
    return env


def _cli(env: dict[str, str], *args: str) -> float:
    return _cli_timed(env, *args)[0]


def _cli_timed(env: dict[str, str], *args: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, children included) of one `nbflow ...` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nbflow.cli.main", *args], cwd=home_of(env), env=env,
                          capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.stdout.count("gen_") == FILES or args[:2] != ("dags", "list"), done.stdout[-300:]
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def home_of(env: dict[str, str]) -> str:
    return env["NBFLOW_HOME"]


def _import_profile(env: dict[str, str]) -> list[tuple[str, float]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "nbflow.cli.main", "dags", "list"],
                          cwd=home_of(env), env=env, capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
            if cumulative.isdigit() and not name.startswith(" "):
                rows.append((name.strip(), int(cumulative) / 1e6))
    top = [row for row in rows if row[0] in {"sqlalchemy", "alembic", "nbflow", "nbflow.cli.main",
                                             "nbflow.runtime.api", "nbflow.store.engine", "nbflow.store.migrate",
                                             "nbflow.runtime.api_dags", "nbflow.store.sqlite_catalog"}]
    return sorted(top, key=lambda row: -row[1])


def run() -> dict[str, object]:
    root = scratch_dir("dags_list500")
    folder, home = root / "dags", root / "home"
    folder.mkdir()
    home.mkdir()
    an_hour_ago = time.time() - 3600
    for n in range(FILES):
        path = folder / f"dag_{n:03d}.py"
        path.write_text(TEMPLATE.format(n=n, tasks=TASKS))
        os.utime(path, (an_hour_ago, an_hour_ago))
    done = subprocess.run([sys.executable, "-c", REFRESH.format(files=FILES, runs=RUNS), str(folder),
                           str(root / "refresh.db")], cwd=REPO, env=python_env(), check=True, capture_output=True,
                          text=True)
    refresh = json.loads(done.stdout)
    env = _env(home, folder)
    colds = []
    for _ in range(COLD_RUNS):
        for name in ("nbflow.db", "nbflow.db-wal", "nbflow.db-shm"):
            (home / name).unlink(missing_ok=True)
        subprocess.run([sys.executable, "-m", "nbflow.cli.main", "db", "init"], cwd=home, env=env, check=True,
                       capture_output=True)
        colds.append(_cli_timed(env, "dags", "list"))
    unchangeds = [_cli_timed(env, "dags", "list") for _ in range(RUNS)]
    unchanged = statistics.median(wall for wall, _ in unchangeds)
    version = statistics.median(_cli(env, "version") for _ in range(RUNS))
    return {
        "seconds": round(unchanged, 4),
        "cold_seconds": round(statistics.median(wall for wall, _ in colds), 4),
        "cold_min_seconds": round(min(wall for wall, _ in colds), 4),
        "cold_cpu_seconds": round(statistics.median(cpu for _, cpu in colds), 4),
        "unchanged_seconds": round(unchanged, 4),
        "unchanged_min_seconds": round(min(wall for wall, _ in unchangeds), 4),
        "unchanged_cpu_seconds": round(statistics.median(cpu for _, cpu in unchangeds), 4),
        "refresh_cold_seconds": round(refresh["cold"], 4),
        "refresh_unchanged_seconds": round(refresh["unchanged"], 4),
        "cli_version_seconds": round(version, 4),
        "startup_profile": _import_profile(env),
        "files": FILES,
        "tasks_per_file": TASKS,
    }
