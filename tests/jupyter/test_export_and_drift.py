"""`%dag export` writes a .py DAG file that passes `nbflow dags test`; `%dag list|show` report drift between
a kernel's DAG and the saved notebook the scheduler runs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from tests.conftest import NbflowEnv
from tests.ipynb import write_cells
from tests.jupyter.conftest import Shell

ORDERS = ["%%dag orders --schedule @daily --retries 1\npass",
          "%%setup\nimport json",
          "%%task extract\n[1, 2, 3]",
          "%%task total --upstream extract\njson.dumps(sum(extract))",
          "%%bash_task announce --upstream total\necho total={{ ti.xcom_pull(task_ids='total') }}"]


def dags_test(folder: Path, dag_id: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NBFLOW__CORE__DAGS_FOLDER": str(folder)}
    return subprocess.run([sys.executable, "-m", "nbflow.cli.main", "dags", "test", dag_id, "2025-02-01"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_an_exported_dag_passes_dags_test(ipython: Shell, tmp_path: Path) -> None:
    for cell in ORDERS:
        ipython.ok(cell)
    path = tmp_path / "exported" / "orders.py"
    assert ipython.ok(f"%dag export orders {path}").out.startswith(f"wrote {path}")
    done = dags_test(path.parent, "orders")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "total=6" in done.stdout
    assert ": success in " in done.stderr


def test_export_without_a_path_writes_to_the_dags_folder_and_will_not_overwrite(
        ipython: Shell, nbflow_env: NbflowEnv) -> None:
    for cell in ORDERS:
        ipython.ok(cell)
    ipython.ok("%dag export orders")
    assert (nbflow_env.dags / "orders.py").is_file()
    again = ipython.run("%dag export orders")
    assert isinstance(again.error, UsageError) and "exists; pass --force" in str(again.error)
    ipython.ok("%dag export orders --force")


def _save(nbflow_env: NbflowEnv, cells: list[str]) -> Path:
    return write_cells(nbflow_env.dags / "orders.ipynb", "md:# Orders", *cells)


def _drift_row(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("orders "))


@pytest.fixture
def drifted(ipython: Shell, nbflow_env: NbflowEnv) -> Shell:
    """`orders` saved in the dags folder, and open in the kernel with `total` changed and `extra` added."""
    _save(nbflow_env, ORDERS)
    for cell in ORDERS:
        ipython.ok(cell)
    ipython.ok("%%task total --upstream extract\njson.dumps(sum(extract) * 2)")
    ipython.ok("%%task extra --upstream extract\nlen(extract)")
    return ipython


def test_dag_list_names_the_tasks_that_differ_from_the_saved_notebook(drifted: Shell) -> None:
    row = _drift_row(drifted.ok("%dag list").out)
    assert "kernel + dags/orders.ipynb" in row
    assert "extra: only in the kernel (not saved); total: changed in the kernel (not saved)" in row


def test_dag_show_names_the_tasks_that_differ_from_the_saved_notebook(drifted: Shell) -> None:
    out = drifted.ok("%dag show orders").out
    assert "differs from " in out and "orders.ipynb (what the scheduler runs)" in out
    assert "extra: only in the kernel (not saved)" in out and "total: changed in the kernel (not saved)" in out
    assert "announce" not in out and "extract:" not in out


def test_a_dag_the_same_as_saved_has_no_drift(ipython: Shell, nbflow_env: NbflowEnv) -> None:
    _save(nbflow_env, ORDERS)
    for cell in ORDERS:
        ipython.ok(cell)
    assert _drift_row(ipython.ok("%dag list").out).endswith("same as saved")


def test_saving_the_notebook_ends_the_drift_the_kernel_reported(drifted: Shell, nbflow_env: NbflowEnv) -> None:
    assert "changed in the kernel" in _drift_row(drifted.ok("%dag list").out)
    path = _save(nbflow_env, ORDERS[:3] + ["%%task total --upstream extract\njson.dumps(sum(extract) * 2)",
                                           ORDERS[4], "%%task extra --upstream extract\nlen(extract)"])
    stamp = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))  # a different mtime even on a coarse clock
    assert _drift_row(drifted.ok("%dag list").out).endswith("same as saved")


def test_dag_show_compares_with_the_notebook_as_saved_now(drifted: Shell, nbflow_env: NbflowEnv) -> None:
    assert "differs from " in drifted.ok("%dag show orders").out
    path = _save(nbflow_env, ORDERS[:3] + ["%%task total --upstream extract\njson.dumps(sum(extract) * 2)",
                                           ORDERS[4], "%%task extra --upstream extract\nlen(extract)"])
    stamp = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))
    assert "same as " in drifted.ok("%dag show orders").out
