"""The kernel's scheduler and a standalone `nbflow scheduler` on one database: no task instance runs twice."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow.runtime import api
from tests.conftest import NbflowEnv
from tests.ipynb import write_cells
from tests.jupyter.conftest import Shell
from tests.runtime.scheduler_helpers import lines, wait_for

RUNS = 4


def cells(dag_id: str, marks: Path) -> list[str]:
    """A DAG of three cell tasks; each writes `<run_id> <task_id>` to `marks` when it runs."""
    mark = f"open({str(marks)!r}, 'a').write(context['run_id'] + ' ' + context['ti'].task_id + '\\n')"
    return [f"%%dag {dag_id}\npass",
            f"%%task a\n{mark}\n1",
            f"%%task b --upstream a\n{mark}\na + 1",
            f"%%task c --upstream a b\n{mark}\na + b"]


@pytest.fixture
def standalone(nbflow_env: NbflowEnv, monkeypatch: pytest.MonkeyPatch):
    """`nbflow scheduler` in its own process on the test's database, up once it has recorded the dags folder."""
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    monkeypatch.setenv("NBFLOW__SCHEDULER__PARSE_INTERVAL_SEC", "0.5")
    from nbflow.configuration import load_config
    env = api.Environment.from_config(load_config())
    api.init_database(env)
    proc = subprocess.Popen([sys.executable, "-m", "nbflow.cli.main", "scheduler"], env=dict(os.environ),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield proc, env
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_kernel_and_standalone_schedulers_run_each_task_instance_exactly_once(
        ipython: Shell, nbflow_env: NbflowEnv, standalone, tmp_path: Path) -> None:
    proc, env = standalone
    marks = tmp_path / "marks.txt"
    write_cells(nbflow_env.dags / "shared.ipynb", "md:# Shared\nRun by both schedulers.", *cells("shared", marks))
    wait_for(lambda: api.is_paused(env, "shared") is False, timeout=120)  # the standalone one has parsed it
    for cell in cells("shared", marks) + cells("kernel_only", marks):  # the same DAG open in the kernel, and one more
        ipython.ok(cell)
    ipython.ok("%nbflow scheduler start")
    kernel = ipython.magics.env
    warm = api.trigger_dag(kernel, "kernel_only").run_id  # both workers warm: the runs below are a real race
    wait_for(lambda: api.get_run(env, "kernel_only", warm).state == "success", timeout=180)
    marks.unlink()  # the kernel's view: the dags folder plus its own DAGs (as `%dag run` uses)
    triggered = [(dag_id, api.trigger_dag(kernel, dag_id).run_id)
                 for _ in range(RUNS) for dag_id in ("shared", "kernel_only")]
    for dag_id, run_id in triggered:
        assert wait_for(lambda: (s := api.get_run(env, dag_id, run_id).state) in ("success", "failed") and s,
                        timeout=180) == "success", (dag_id, run_id)
    assert proc.poll() is None, "the standalone scheduler kept running"
    counts = collections.Counter(lines(marks))
    assert len(counts) == len(triggered) * 3
    assert set(counts.values()) == {1}, [line for line, n in counts.items() if n > 1]
    for dag_id, run_id in triggered:
        assert {(ti.task_id, ti.state, ti.try_number) for ti in api.task_states(env, dag_id, run_id)} == \
            {("a", "success", 1), ("b", "success", 1), ("c", "success", 1)}
