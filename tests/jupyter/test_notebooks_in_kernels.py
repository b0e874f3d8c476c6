"""Whole notebooks executed top to bottom in real Jupyter kernels (nbclient), as a user runs them."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import NbflowEnv
from tests.ipynb import cell_text

RAISES = "raises-exception"  # nbclient's tag for a cell expected to fail; the cells after it still run


def execute(folder: Path, *cells: str | tuple[str, str]) -> list[str]:
    """Run the cells in a fresh python3 kernel working in `folder`; each cell's text output (an error as
    `ename: evalue`). The kernel inherits this process's environment: the test's NBFLOW_HOME, PYTHONPATH."""
    items = []
    for cell in cells:
        source, tag = (cell, None) if isinstance(cell, str) else cell
        items.append(new_code_cell(source, metadata={"tags": [tag]} if tag else {}))
    notebook = new_notebook(cells=items)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(notebook, kernel_name="python3", timeout=240,
                            resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    finally:
        nbformat.write(notebook, str(folder / "executed.ipynb"))  # for whoever reads a failure
    return [cell_text(cell) for cell in notebook.cells]


@pytest.fixture
def kernel_env(nbflow_env: NbflowEnv, monkeypatch: pytest.MonkeyPatch) -> NbflowEnv:
    """What the kernel inherits: the test's NBFLOW_HOME and dags folder, DAGs unpaused, a quick heartbeat."""
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


def test_cell_tasks_run_in_child_processes_and_dag_test_passes_in_a_real_kernel(
        kernel_env: NbflowEnv, tmp_path: Path) -> None:
    out = execute(
        tmp_path,
        "%load_ext nbflow\nimport os\nKERNEL_PID = os.getpid()",
        "%%dag numbers --tags demo\npass",
        "%%setup\nimport os, statistics",
        "%%task numbers --run\nprint('made the numbers')\n[2, 4, 9, os.getpid()]",
        "_[-1] != KERNEL_PID",
        "%%task mean --upstream numbers --run\nstatistics.mean(numbers[:3])",
        "%dag test numbers",
    )
    assert out[3] == "made the numbers\n[2, 4, 9, " + out[3].split(", ")[-1]
    assert out[4] == "True"  # the task ran in a process of its own, not in the kernel
    assert out[5] == "5"
    assert out[6].startswith("DagWidget('numbers'")  # the test run's live graph (its plain-text form here)
    assert "testing DAG numbers" in out[6] and ": success in " in out[6]


def test_a_segfaulting_cell_task_fails_with_its_reason_and_the_kernel_lives_on(
        kernel_env: NbflowEnv, tmp_path: Path) -> None:
    out = execute(
        tmp_path,
        "%load_ext nbflow\nimport os\nKERNEL_PID = os.getpid()",
        "%%dag crashy\npass",
        "%%task fine\nprint('fine ran')\n1",
        "%%task crash --upstream fine\nimport ctypes\nprint('about to crash')\nctypes.string_at(0)",
        ("%dag test crashy", RAISES),
        "print('kernel alive', os.getpid() == KERNEL_PID)",
        ("%%task crash --run\nimport os\nos._exit(7)", RAISES),
        "print('still alive', os.getpid() == KERNEL_PID)",
    )
    test = out[4]
    assert "UsageError: %dag test crashy: run " in test and "task crash failed" in test
    assert "was killed by signal 11 (SIGSEGV)" in test  # the failed task's log, shown under the cell
    assert "about to crash" in test
    assert out[5] == "kernel alive True\n"
    assert "UsageError: task crashy.crash failed: the task's process exited with code 7" in out[6]
    assert out[7] == "still alive True\n"


def test_xcom_reads_what_the_in_kernel_scheduler_ran(kernel_env: NbflowEnv, tmp_path: Path) -> None:
    out = execute(
        tmp_path,
        "%load_ext nbflow\nimport time\nfrom nbflow.runtime import api",
        "%%dag scheduled_here\npass",
        "%%task hello\n'hello from ' + context['dag'].dag_id",
        "%nbflow scheduler start",
        "%dag run scheduled_here",
        "env = get_ipython().find_magic('xcom').__self__.env\n"
        "for _ in range(1200):\n"
        "    state = api.list_runs(env, 'scheduled_here')[0].state\n"
        "    if state in ('success', 'failed'):\n"
        "        break\n"
        "    time.sleep(0.1)\n"
        "state",
        "%xcom scheduled_here hello",
        "%nbflow scheduler stop",
    )
    assert out[4].startswith("queued run manual__")
    assert out[5] == "'success'"
    assert out[6] == "'hello from scheduled_here'"
    assert out[7] == "scheduler stopped\n"
