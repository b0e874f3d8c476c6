"""A real Jupyter kernel before `nbflow db init`: DAG parsing goes to a spawned process, never the kernel.

A kernel must not fork (DESIGN.md), so before there is a database to store serialized DAGs in, the
listing of the dags folder and of the kernel's own cells is parsed from a spawned DAG processor: a
file that calls `os._exit` at import becomes an import error there, and the kernel lives on.
"""
from __future__ import annotations

from typing import Any

from tests.conftest import NbflowEnv, write_dag
from tests.jupyter.test_kernel_lifecycle import execute, kernel  # noqa: F401 - the real-kernel fixture

LIST_DAGS = """
from nbflow.configuration import load_config
from nbflow.runtime import api
{env}
listing = api.list_dags(env)
print("dags:", ",".join(d.dag_id for d in listing.dags), "errors:", listing.import_error_count)
print("import error:", api.list_import_errors(env)[0].error.splitlines()[-1] if listing.import_error_count else "")
"""

HEALTHY = """
from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
with DAG("healthy", schedule=None):
    EmptyOperator(task_id="noop")
"""


def test_listing_a_folder_with_a_file_that_exits_at_import_leaves_the_kernel_alive(
        kernel: Any, nbflow_env: NbflowEnv) -> None:  # noqa: F811
    km, kc = kernel
    write_dag(nbflow_env.dags, "healthy.py", HEALTHY)
    write_dag(nbflow_env.dags, "exits.py", "# nbflow dag\nimport os\nos._exit(3)\n")
    out, error = execute(kc, LIST_DAGS.format(env="env = api.Environment.from_config(load_config())"))
    assert not error, error
    assert "dags: healthy errors: 1" in out
    assert "exit code 3" in out
    assert km.is_alive()
    assert not (nbflow_env.home / "nbflow.db").exists()  # nothing stored before db init


def test_the_kernels_cell_dags_are_listed_before_db_init(kernel: Any, nbflow_env: NbflowEnv) -> None:  # noqa: F811
    km, kc = kernel
    write_dag(nbflow_env.dags, "healthy.py", HEALTHY)
    execute(kc, "%load_ext nbflow")
    execute(kc, "%%dag etl\npass")
    execute(kc, "%%task numbers\n[1, 2, 3]")
    magics_env = "env = get_ipython().magics_manager.registry['NbflowMagics'].env"
    out, error = execute(kc, LIST_DAGS.format(env=magics_env))
    assert not error, error
    assert "dags: etl,healthy errors: 0" in out
    out, error = execute(kc, "%dag list")
    assert not error and "etl" in out and "healthy" in out
    assert not (nbflow_env.home / "nbflow.db").exists()
    out, error = execute(kc, "%dag run etl --no-widget")  # a fresh SQLite database is created for it
    assert not error and "queued run" in out, (out, error)
    assert km.is_alive()
