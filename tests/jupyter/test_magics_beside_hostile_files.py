"""A real Jupyter kernel never imports a file of the dags folder: beside a file that calls `os._exit(3)` at
import and one that blocks SIGALRM and sleeps, `%dag list|show|run|test|pause` about a healthy DAG answer, the
kernel keeps its PID and runs the next cell, and every file ran only in other processes (each writes the PID
of whoever imports it to a marker file: the kernel's PID is never there). Before and after `nbflow db init`."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_commands_beside_hostile_files import EXITING, SLEEPING, WRITE_PID
from tests.conftest import NbflowEnv, write_dag
from tests.jupyter.test_kernel_lifecycle import execute, start_project_kernel

GOOD = WRITE_PID + """from datetime import datetime
from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
with DAG("good", schedule="@daily", start_date=datetime(2025, 1, 1)):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""


@dataclass
class HostileKernel:
    """A kernel started in a project whose dags folder holds `good.py`, `exiting.py` and `sleeping.py`."""

    km: Any
    kc: Any
    dags: Path
    pid: int  # the kernel's own process, as it reports it
    hostile_marker: Path  # PIDs that imported exiting.py or sleeping.py
    good_marker: Path  # PIDs that imported good.py

    def run(self, code: str) -> str:
        out, error = execute(self.kc, code)
        assert not error, f"{code!r}: {error}\n{out}"
        return out

    def still_alive(self) -> bool:
        """The same kernel process answers a following cell."""
        return self.km.is_alive() and self.run("import os; print(os.getpid())").strip() == str(self.pid)


def importers(marker: Path) -> list[int]:
    return [int(pid) for pid in marker.read_text().split()] if marker.exists() else []


@pytest.fixture(params=["before_db_init", "after_db_init"])
def hostile_kernel(request: pytest.FixtureRequest, nbflow_env: NbflowEnv, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileKernel]:
    monkeypatch.setenv("NBFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "2")
    monkeypatch.setenv("NBFLOW__DAG_PROCESSOR__MAX_MEMORY_MB", "256")
    hostile_marker, good_marker = tmp_path / "hostile_imported_by.txt", tmp_path / "good_imported_by.txt"
    write_dag(nbflow_env.dags, "good.py", GOOD.format(marker=str(good_marker)))
    write_dag(nbflow_env.dags, "exiting.py", EXITING.format(marker=str(hostile_marker)))
    write_dag(nbflow_env.dags, "sleeping.py", SLEEPING.format(marker=str(hostile_marker)))
    if request.param == "after_db_init":
        from nbflow.configuration import load_config
        from nbflow.runtime import api
        api.init_database(api.Environment.from_config(load_config()))
    km, kc = start_project_kernel(nbflow_env.dags.parent)
    try:
        out, error = execute(kc, "%load_ext nbflow\nimport os; print(os.getpid())")
        assert not error, error
        yield HostileKernel(km, kc, nbflow_env.dags, int(out.strip()), hostile_marker, good_marker)
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def assert_never_imported_by_the_kernel(kernel: HostileKernel) -> None:
    assert len(importers(kernel.hostile_marker)) >= 2  # both hostile files were parsed, by other processes
    assert kernel.pid not in importers(kernel.hostile_marker)
    assert kernel.pid not in importers(kernel.good_marker)


def test_dag_list_lists_the_good_dag_and_one_line_per_broken_file(hostile_kernel: HostileKernel) -> None:
    out = hostile_kernel.run("%dag list")
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["good", "import"]
    assert "good.py" in out and "@daily" in out
    broken = [line for line in out.splitlines() if line.startswith("import error: ")]
    assert len(broken) == 2
    assert any("exiting.py" in line and "exit code 3" in line for line in broken), broken
    assert any("sleeping.py" in line for line in broken), broken
    assert hostile_kernel.still_alive()
    assert_never_imported_by_the_kernel(hostile_kernel)


def test_dag_show_shows_the_good_dags_graph(hostile_kernel: HostileKernel) -> None:
    out = hostile_kernel.run("%dag show good\nw = get_ipython().magics_manager.registry['NbflowMagics'].widgets[-1]\n"
                             "print(sorted(w.node_ids.values()))")
    assert "['a', 'b']" in out  # its graph (before `db init` the widget also says it has no runs to read)
    assert hostile_kernel.still_alive()
    assert_never_imported_by_the_kernel(hostile_kernel)


def test_dag_run_queues_a_run_of_the_good_dag(hostile_kernel: HostileKernel) -> None:
    out = hostile_kernel.run("%dag run good --no-widget")
    assert "queued run manual__" in out and "of good" in out
    assert hostile_kernel.still_alive()
    assert_never_imported_by_the_kernel(hostile_kernel)


def test_dag_test_runs_the_good_dag_in_a_child(hostile_kernel: HostileKernel) -> None:
    out = hostile_kernel.run("%dag test good --no-widget")
    assert "success" in out.splitlines()[-1], out
    assert importers(hostile_kernel.good_marker)  # the test's child imported it
    assert hostile_kernel.still_alive()
    assert_never_imported_by_the_kernel(hostile_kernel)


def test_dag_pause_pauses_the_good_dag(hostile_kernel: HostileKernel) -> None:
    assert "DAG good paused" in hostile_kernel.run("%dag pause good")
    out = hostile_kernel.run("from nbflow.configuration import load_config\nfrom nbflow.runtime import api\n"
                             "print('paused:', api.is_paused(api.Environment.from_config(load_config()), 'good'))")
    assert "paused: True" in out
    assert hostile_kernel.still_alive()
    assert_never_imported_by_the_kernel(hostile_kernel)


def test_a_dag_of_a_broken_file_is_its_stored_import_error_in_one_line(hostile_kernel: HostileKernel) -> None:
    write_dag(hostile_kernel.dags, "doomed.py",
              "from nbflow import DAG  # nbflow dag\nDAG('doomed', schedule=None)\nraise RuntimeError('broken on purpose')\n")
    out, error = execute(hostile_kernel.kc, "%dag test doomed --no-widget")  # IPython prints a UsageError
    said = (out + error).strip()
    assert said.startswith("UsageError: DAG 'doomed' could not be loaded: ") and len(said.splitlines()) == 1, said
    assert "doomed.py:3: RuntimeError: broken on purpose" in said
    assert hostile_kernel.still_alive()


PARAMS = WRITE_PID + """from nbflow import DAG, Param
from nbflow.operators.empty import EmptyOperator
with DAG("sized", schedule=None, params={{"size": Param(3, type="integer")}}):
    EmptyOperator(task_id="a")
"""


def test_dag_run_checks_a_folder_dags_params_outside_the_kernel(hostile_kernel: HostileKernel) -> None:
    write_dag(hostile_kernel.dags, "sized.py", PARAMS.format(marker=str(hostile_kernel.good_marker)))
    out, error = execute(hostile_kernel.kc, """%dag run sized --no-widget --conf '{"size": "big"}'""")
    said = (out + error).strip().splitlines()[-1]  # after "(created the metadata database ...)" before db init
    assert said == "UsageError: DAG 'sized': param 'size' = 'big' is invalid: 'big' is not of type 'integer'"
    assert "queued run" in hostile_kernel.run("""%dag run sized --no-widget --conf '{"size": 5}'""")
    assert hostile_kernel.still_alive()
    assert len(importers(hostile_kernel.good_marker)) >= 2  # parsed, then loaded to check the conf: elsewhere
    assert_never_imported_by_the_kernel(hostile_kernel)


def test_dag_list_compares_a_kernel_dag_with_the_saved_file_of_the_same_id(hostile_kernel: HostileKernel) -> None:
    hostile_kernel.run("%%dag good --schedule @daily\nfrom nbflow.operators.empty import EmptyOperator\n"
                       "EmptyOperator(task_id='a')")
    row = next(line for line in hostile_kernel.run("%dag list").splitlines() if line.startswith("good "))
    assert "kernel + dags/good.py" in row and row.endswith("b: only in the saved file"), row
    assert hostile_kernel.still_alive()
    assert_never_imported_by_the_kernel(hostile_kernel)
