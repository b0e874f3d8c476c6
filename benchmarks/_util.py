"""Helpers shared by benchmark modules (a leading `_` keeps this file out of the registry)."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRATCH = REPO / ".benchmarks"  # git-ignored


def scratch_dir(name: str) -> Path:
    """An empty folder `.benchmarks/<name>` for one benchmark's files (emptied on each call)."""
    folder = SCRATCH / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def median_seconds(work: Callable[[], object], runs: int, warmup: int = 1) -> float:
    """Median wall time of `work()` over `runs` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        work()
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def python_env() -> dict[str, str]:
    """The environment for child interpreters: bytecode caching on, as users have it.

    Some machines export PYTHONDONTWRITEBYTECODE=1, which would make every timed start-up
    compile nbflow from source.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_python(args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    """Run `sys.executable *args` from the repository root; raise if it fails."""
    subprocess.run([sys.executable, *args], cwd=REPO, env=env or python_env(), check=True,
                   stdout=subprocess.DEVNULL)
