"""Why a worker cannot run an attempt: one line naming the DAG file, the stored import error first."""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
from nbflow.runtime import api
from nbflow.runtime.refusals import why_not_loadable
from nbflow.runtime.workload import Workload
from tests.runtime.scheduler_helpers import make_env


@pytest.fixture
def environment(nbflow_env) -> api.Environment:
    return make_env()


@pytest.fixture
def workload(nbflow_env) -> Workload:
    return Workload("etl", "load", "manual__1", -1, 1, str(Path(nbflow_env.dags) / "etl.py"))


def etl(*task_ids: str) -> DAG:
    with DAG("etl", schedule=None) as dag:
        for task_id in task_ids:
            EmptyOperator(task_id=task_id)
    return dag


def store_error(environment: api.Environment, path: str) -> None:
    """A file that fails at its third line, as the DAG processor parses and stores it."""
    Path(path).write_text("from nbflow import DAG\n\nraise RuntimeError('no warehouse')\n", encoding="utf-8")
    assert [entry.path for entry in api.list_import_errors(environment)] == [path]


def test_a_dag_with_the_workloads_task_is_loadable(environment, workload: Workload) -> None:
    assert why_not_loadable(workload, etl("load"), sessions=environment.readers, local_errors={}) is None


def test_a_dag_without_the_workloads_task_names_the_task_and_the_file(environment, workload: Workload) -> None:
    reason = why_not_loadable(workload, etl("extract"), sessions=environment.readers, local_errors={})
    assert reason is not None and "'load'" in reason and "'etl'" in reason and workload.fileloc in reason


def test_a_missing_dag_says_the_error_the_dag_processor_stored_for_its_file(environment, workload: Workload) -> None:
    store_error(environment, workload.fileloc)
    reason = why_not_loadable(workload, None, sessions=environment.readers,
                              local_errors={workload.fileloc: "ignored: the stored error comes first"})
    assert reason is not None and reason.startswith(f"DAG 'etl' could not be loaded: {workload.fileloc}:3: "
                                                    f"RuntimeError: no warehouse;")
    assert "Traceback" not in reason and "ignored" not in reason


def test_without_a_stored_error_this_process_parse_error_is_said(environment, workload: Workload) -> None:
    reason = why_not_loadable(workload, None, sessions=environment.readers,
                              local_errors={workload.fileloc: "SyntaxError: invalid syntax\n  line 2"})
    assert reason is not None and f"{workload.fileloc}: SyntaxError: invalid syntax" in reason


def test_a_file_that_imports_but_no_longer_defines_the_dag_says_so(environment, workload: Workload) -> None:
    reason = why_not_loadable(workload, None, sessions=environment.readers, local_errors={})
    assert reason is not None and f"DAG 'etl' is no longer defined in {workload.fileloc}" in reason
