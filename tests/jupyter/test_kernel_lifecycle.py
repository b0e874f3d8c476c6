"""A real Jupyter kernel: its scheduler and the worker processes end with it, and run its DAGs meanwhile."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import NbflowEnv

REPO = Path(__file__).resolve().parents[2]


def start_project_kernel(project: Path) -> tuple[Any, Any]:
    """A real python3 kernel working in `project`, importing this checkout's nbflow, with this process's NBFLOW_*."""
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return start_new_kernel(kernel_name="python3", env=env, cwd=str(project))


@pytest.fixture
def kernel(nbflow_env: NbflowEnv) -> Any:
    km, kc = start_project_kernel(nbflow_env.dags.parent)
    yield km, kc
    if km.has_kernel:
        km.shutdown_kernel(now=True)


def execute(kc: Any, code: str) -> tuple[str, str]:
    """Run `code`; its stdout text and its error (empty when none)."""
    out: list[str] = []
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    kc.execute_interactive(code, timeout=120, output_hook=hook)
    return "".join(out), "\n".join(errors)


def test_shutting_the_kernel_down_ends_its_scheduler_and_workers(kernel: Any) -> None:
    km, kc = kernel
    execute(kc, "%load_ext nbflow")
    execute(kc, "%%dag etl\nfrom nbflow.operators.bash import BashOperator\n"
                "slow = BashOperator(task_id='slow', bash_command='sleep 1; echo done')")
    out, error = execute(kc, "%nbflow scheduler start")
    assert not error and "scheduler started" in out
    execute(kc, "%dag run etl --no-widget")
    kernel_process = psutil.Process(km.provisioner.process.pid)
    deadline = time.monotonic() + 30
    while len(kernel_process.children(recursive=True)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker and its fork server
    started = kernel_process.children(recursive=True)
    assert started, "the scheduler started no worker"
    km.shutdown_kernel(now=False)
    gone, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, [p.cmdline() for p in alive]


def test_a_kernel_dag_runs_under_the_kernel_scheduler_and_its_value_is_readable(kernel: Any) -> None:
    _, kc = kernel
    execute(kc, "%load_ext nbflow")
    execute(kc, "%%dag etl\npass")
    execute(kc, "%%task numbers\n[1, 2, 3]")
    execute(kc, "%%task total --upstream numbers\nsum(numbers)")
    execute(kc, "%nbflow scheduler start")
    out, error = execute(kc, "%dag run etl --no-widget")
    assert not error and "queued run" in out
    code = ("import time\nfor _ in range(300):\n    try:\n        value = %xcom etl total\n        break\n"
            "    except Exception:\n        time.sleep(0.1)\nprint('total =', value)")
    out, error = execute(kc, code)
    assert "total = 6" in out, (out, error)
    out, _ = execute(kc, "%nbflow scheduler stop")
    assert "scheduler stopped" in out


def _kernel_rows(home: Path) -> list[str]:
    import sqlite3

    if not (home / "nbflow.db").exists():
        return []
    with sqlite3.connect(home / "nbflow.db") as db:
        try:
            return [path for (path,) in db.execute("SELECT path FROM dag_file WHERE path LIKE 'kernel:%'")]
        except sqlite3.OperationalError:  # the table is not there yet
            return []


def _wait(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s")


def _register_cells(kc: Any) -> None:
    execute(kc, "%load_ext nbflow")
    execute(kc, "%%dag cells_only\npass")
    execute(kc, "%%task one\n1")
    out, error = execute(kc, "%nbflow scheduler start")  # its DAG processor records the kernel's cells
    assert not error and "scheduler started" in out


def test_a_kernels_dags_are_forgotten_when_it_shuts_down_cleanly(kernel: Any, nbflow_env: NbflowEnv) -> None:
    km, kc = kernel
    _register_cells(kc)
    assert _wait(lambda: _kernel_rows(nbflow_env.home)) == ["kernel:cells_only"]
    km.shutdown_kernel(now=False)
    _wait(lambda: _kernel_rows(nbflow_env.home) == [])


def test_a_killed_kernels_dags_are_forgotten_at_the_next_refresh(kernel: Any, nbflow_env: NbflowEnv) -> None:
    from nbflow.configuration import load_config
    from nbflow.runtime.dag_processor import ProcessorSettings, refresh
    from nbflow.store import make_engine, make_session_factory

    km, kc = kernel
    _register_cells(kc)
    assert _wait(lambda: _kernel_rows(nbflow_env.home)) == ["kernel:cells_only"]
    km.shutdown_kernel(now=True)  # SIGKILL: no clean-up of its own
    config = load_config()
    assert _kernel_rows(nbflow_env.home) == ["kernel:cells_only"]
    refresh(make_session_factory(make_engine(config.sql_alchemy_conn)), ProcessorSettings.from_config(config))
    assert _kernel_rows(nbflow_env.home) == []
