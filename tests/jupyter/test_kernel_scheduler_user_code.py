"""The scheduler a kernel starts (`%nbflow scheduler start`) needs a folder DAG's user code in two places
besides running its tasks: expanding a mapped task and rendering a cleared ExternalTaskMarker. Both run in
a spawned process, never in the kernel (which is not forked): the DAG file writes the PID that imports it,
and the kernel's PID is never there."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cli.test_commands_beside_hostile_files import WRITE_PID
from tests.conftest import NbflowEnv, write_dag
from tests.jupyter.test_kernel_lifecycle import execute, start_project_kernel

MAPPED = WRITE_PID + """from nbflow import DAG
from nbflow.decorators import task
with DAG("mapped", schedule=None):
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def double(x):
        return 2 * x

    double.expand(x=numbers())
"""


def importers(marker: Path) -> list[int]:
    return [int(pid) for pid in marker.read_text().split()] if marker.exists() else []


def wait_for_run(dag_id: str, deadline: float = 120.0) -> str:
    from nbflow.configuration import load_config
    from nbflow.runtime import api
    env = api.Environment.from_config(load_config())
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        runs = api.list_runs(env, dag_id)
        if runs and runs[0].state in ("success", "failed"):
            return runs[0].state
        time.sleep(0.2)
    pytest.fail(f"the run of {dag_id} did not finish within {deadline} s")


def test_a_mapped_task_of_a_folder_dag_expands_outside_the_kernel(nbflow_env: NbflowEnv, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from nbflow.configuration import load_config
    from nbflow.runtime import api

    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    marker = tmp_path / "imported_by.txt"
    write_dag(nbflow_env.dags, "mapped.py", MAPPED.format(marker=str(marker)))
    api.init_database(api.Environment.from_config(load_config()))
    km, kc = start_project_kernel(nbflow_env.dags.parent)
    try:
        out, error = execute(kc, "%load_ext nbflow\nimport os; print(os.getpid())")
        assert not error, error
        kernel_pid = int(out.strip())
        out, error = execute(kc, "%nbflow scheduler start\n%dag run mapped --no-widget")
        assert not error and "queued run" in out, (out, error)
        assert wait_for_run("mapped") == "success"
        run_id = api.list_runs(api.Environment.from_config(load_config()), "mapped")[0].run_id
        doubles = [row for row in api.task_states(api.Environment.from_config(load_config()), "mapped", run_id)
                   if row.task_id == "double"]
        assert sorted((row.map_index, row.state) for row in doubles) == [(0, "success"), (1, "success"),
                                                                          (2, "success")]
        assert importers(marker) and kernel_pid not in importers(marker)
        out, error = execute(kc, "import os; print(os.getpid())")
        assert not error and out.strip() == str(kernel_pid)
    finally:
        execute(kc, "%nbflow scheduler stop")
        km.shutdown_kernel(now=True)
