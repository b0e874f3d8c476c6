"""`%dag debug`: a failed attempt's real inputs in the kernel, after real runs under real schedulers."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from nbflow.runtime import api
from tests.conftest import NbflowEnv, write_dag
from tests.jupyter.conftest import Shell
from tests.notebooks.conftest import write_notebook
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle, wait_for

pytestmark = pytest.mark.timeout(180)

CELLS = ("%%dag etl\npass", "%%task extract\n[1, 2, 3]",
         "%%task load --upstream extract\ntotal = sum(extract)\nprint('loading', total)\ntotal / 0")

FILE_DAG = """
from nbflow import DAG
from nbflow.operators.notebook import NotebookOperator
from nbflow.operators.python import PythonOperator


def make_rows():
    return [4, 5]


def load(rows, factor, ds):
    print("loading", rows, "for", ds)
    return sum(rows) * factor / 0


with DAG("files", schedule=None):
    rows = PythonOperator(task_id="rows", python_callable=make_rows)
    PythonOperator(task_id="load", python_callable=load, op_kwargs={"rows": rows.output, "factor": 2})
    NotebookOperator(task_id="report", input_nb="report.ipynb", parameters={"day": "{{ ds }}", "limit": 5})
"""


@pytest.fixture
def shell(ipython: Shell, nbflow_env: NbflowEnv, monkeypatch: pytest.MonkeyPatch) -> Shell:
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    monkeypatch.setenv("NBFLOW__CORE__NOTEBOOKS_FOLDER", str(nbflow_env.dags.parent / "notebooks"))
    ipython.shell.rl_next_input = None
    return ipython


def run_to_end(shell: Shell, dag_id: str) -> Any:
    """Trigger the kernel DAG under the in-kernel scheduler; its run once ended."""
    shell.ok("%nbflow scheduler start")
    shell.ok(f"%dag run {dag_id} --conf '{{\"day\": 3}}'")
    env = shell.magics.env
    return wait_for(lambda: next((r for r in api.list_runs(env, dag_id) if r.state in ("success", "failed")), None))


@pytest.fixture
def failed_cell_run(shell: Shell) -> Any:
    for cell in CELLS:
        shell.ok(cell)
    run = run_to_end(shell, "etl")
    assert run.state == "failed"
    return run


@pytest.fixture
def failed_file_run(shell: Shell, nbflow_env: NbflowEnv) -> Any:
    write_notebook(nbflow_env.dags / "report.ipynb", "doubled = limit * 2",
                   "raise ValueError(f'no data for {day}')", parameters="day = ''\nlimit = 0")
    write_dag(nbflow_env.dags, "files.py", FILE_DAG)
    environment = make_env()
    run = api.trigger_dag(environment, "files")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "files", run.run_id).state == "failed"
    return run


def test_debug_binds_upstream_values_and_the_runs_context(shell: Shell, failed_cell_run: Any) -> None:
    result = shell.ok("%dag debug etl load")
    ns = shell.shell.user_ns
    assert ns["extract"] == [1, 2, 3]
    context = ns["context"]
    assert context["run_id"] == failed_cell_run.run_id
    assert context["ds"] == failed_cell_run.logical_date.date().isoformat()
    assert context["dag_run"].conf == {"day": 3} and context["task"].task_id == "load"
    assert context["ti"].xcom_pull(task_ids="extract") == [1, 2, 3]
    assert "ZeroDivisionError: division by zero" in result.out and "loading 6" in result.out  # error, log tail


def test_debug_puts_the_cell_tasks_source_in_the_next_cell(shell: Shell, failed_cell_run: Any) -> None:
    shell.ok("%dag debug etl load")
    assert shell.shell.rl_next_input == ("%%task load --upstream extract --dag etl\n"
                                         "total = sum(extract)\nprint('loading', total)\ntotal / 0")


def test_the_cell_body_reproduces_the_failure_with_the_bound_inputs(shell: Shell, failed_cell_run: Any) -> None:
    shell.ok("%dag debug etl load")
    body = shell.shell.rl_next_input.split("\n", 1)[1]
    assert isinstance(shell.run(body).error, ZeroDivisionError)
    assert shell.shell.user_ns["total"] == 6


def test_retry_after_fixing_the_cell_task_leads_the_run_to_success(shell: Shell, failed_cell_run: Any) -> None:
    shell.ok("%%task load --upstream extract --dag etl\nsum(extract) * 10")
    result = shell.ok("%dag debug etl load --retry")
    assert f"retrying etl.load in run {failed_cell_run.run_id} with the task as defined now" in result.out
    env = shell.magics.env
    run = wait_for(lambda: (r := api.get_run(env, "etl", failed_cell_run.run_id)).state == "success" and r)
    assert run.state == "success"
    assert shell.ok("%xcom etl load").value == 60


def test_variables_and_connections_resolve_in_the_kernel(shell: Shell, failed_cell_run: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_VAR_GREETING", "hello")
    monkeypatch.setenv("NBFLOW_CONN_WAREHOUSE", "postgresql://etl:pw@db:5432/wh")
    shell.ok("%dag debug etl load")
    assert shell.ok("from nbflow.models import Variable\nVariable.get('greeting')").value == "hello"
    assert shell.ok("context['var'].value.greeting").value == "hello"
    assert shell.ok("from nbflow.hooks.base import BaseHook\nBaseHook.get_connection('warehouse').host").value == "db"


def test_debug_shows_a_python_callables_source_and_binds_its_arguments(shell: Shell, failed_file_run: Any) -> None:
    result = shell.ok("%dag debug files load")
    ns = shell.shell.user_ns
    assert ns["rows"] == [4, 5] and ns["factor"] == 2
    assert ns["ds"] == failed_file_run.logical_date.date().isoformat()
    assert "def load(rows, factor, ds):" in result.out and "return sum(rows) * factor / 0" in result.out
    assert shell.shell.rl_next_input.startswith("load(rows=rows, factor=factor, ds=ds)")
    assert isinstance(shell.run(shell.shell.rl_next_input).error, ZeroDivisionError)


def test_debug_names_a_notebook_tasks_failing_cell_and_binds_its_parameters(shell: Shell, nbflow_env: NbflowEnv,
                                                                             failed_file_run: Any) -> None:
    result = shell.ok("%dag debug files report")
    day = failed_file_run.logical_date.date().isoformat()
    assert shell.shell.user_ns["day"] == day and shell.shell.user_ns["limit"] == 5
    assert f"ValueError: no data for {day}" in result.out
    assert "attempt=1.ipynb" in result.out
    assert "failing cell: cell 3 (In [4])" in result.out  # parameters, injected parameters, doubled, raise
    assert "raise ValueError(f'no data for {day}')" in shell.shell.rl_next_input


@pytest.mark.parametrize(("line", "expected"), [
    ("%dag debug nope load", "DAG 'nope'"),
    ("%dag debug etl nope", "DAG 'etl' has no task 'nope'"),
    ("%dag debug etl load --run gone", "DAG 'etl' has no run 'gone'"),
    ("%dag debug etl load --try 7", "ran 1 time(s)"),
    ("%dag debug etl nope --retry", "DAG 'etl' has no task 'nope'"),
])
def test_bad_input_is_one_usage_error_line(shell: Shell, failed_cell_run: Any, line: str, expected: str) -> None:
    result = shell.run(line)
    assert isinstance(result.error, UsageError), result.error
    assert expected in str(result.error) and "\n" not in str(result.error)
    assert shell.ok("1 + 1").value == 2


def test_a_task_that_never_ran_is_one_usage_error_line(shell: Shell) -> None:
    for cell in CELLS:
        shell.ok(cell)
    result = shell.run("%dag debug etl load")
    assert isinstance(result.error, UsageError) and "has no runs yet" in str(result.error)


def test_an_unreachable_database_is_one_usage_error_line(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg://u:secret@127.0.0.1:1/nbflow")
    for cell in CELLS:
        shell.ok(cell)
    result = shell.run("%dag debug etl load")
    assert isinstance(result.error, UsageError) and "metadata database" in str(result.error)
    assert "\n" not in str(result.error) and "secret" not in str(result.error)


def test_try_picks_an_earlier_attempt(shell: Shell) -> None:
    shell.ok("%%dag flaky --retries 1 --retry-delay 0\npass")
    shell.ok("%%task once\nprint('this is try', context['ti'].try_number)\n1 / 0")
    assert run_to_end(shell, "flaky").state == "failed"
    assert "this is try 2" in shell.ok("%dag debug flaky once").out
    result = shell.ok("%dag debug flaky once --try 1")
    assert "try 1 of 2 (up_for_retry)" in result.out and "this is try 1" in result.out
    assert shell.shell.user_ns["context"]["ti"].try_number == 1


def test_a_saved_notebooks_cell_task_runs_its_setup_and_offers_its_body(shell: Shell, nbflow_env: NbflowEnv) -> None:
    write_notebook(nbflow_env.dags / "saved.ipynb", "%%dag saved\npass", "%%setup\nFACTOR = 10",
                   "%%task extract\n[1, 2]", "%%task load --upstream extract\nsum(extract) * FACTOR / 0")
    environment = make_env()
    api.trigger_dag(environment, "saved")
    run_scheduler_until_idle(environment)
    shell.ok("%dag debug saved load")
    assert shell.shell.user_ns["FACTOR"] == 10 and shell.shell.user_ns["extract"] == [1, 2]
    next_cell = shell.shell.rl_next_input
    assert next_cell.startswith("# cell task saved.load (cell 4 of ") and next_cell.endswith("sum(extract) * FACTOR / 0")
    assert isinstance(shell.run(next_cell).error, ZeroDivisionError)


def test_a_bash_task_shows_its_rendered_script_and_offers_its_cell(shell: Shell) -> None:
    shell.ok("%%dag shell_dag\npass")
    shell.ok("%%bash_task stamp\necho 'day {{ ds }}'\nexit 3")
    run = run_to_end(shell, "shell_dag")
    result = shell.ok("%dag debug shell_dag stamp")
    assert f"bash_command = \"echo 'day {run.logical_date.date().isoformat()}'" in result.out
    assert shell.shell.rl_next_input == "%%bash_task stamp --dag shell_dag\necho 'day {{ ds }}'\nexit 3"
