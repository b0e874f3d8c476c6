"""The notebook magics in a real IPython shell: definitions, errors under the cell, runs in child processes."""
from __future__ import annotations

from IPython.core.error import UsageError

from tests.jupyter.conftest import Shell

DAG_CELL = "%%dag etl\nfrom nbflow.operators.empty import EmptyOperator\nstart = EmptyOperator(task_id='start')"


def test_dag_cell_declares_a_dag_with_its_schedule(ipython: Shell) -> None:
    result = ipython.ok("%%dag etl --schedule @daily --retries 2\npass")
    dag = ipython.magics.kernel_dags.dag("etl")
    assert dag.timetable.summary == "@daily" and dag.default_args["retries"] == 2
    assert "DAG etl" in result.out


def test_task_run_binds_upstream_values_and_returns_the_last_expression(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    assert ipython.ok("%%task extract --run\nrows = [1, 2, 3]\nrows").value == [1, 2, 3]
    result = ipython.ok("%%task total --upstream extract --run\nprint('adding', extract)\nsum(extract)")
    assert result.value == 6
    assert "adding [1, 2, 3]" in result.out


def test_a_bad_magic_argument_is_one_usage_error(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    result = ipython.run("%%task load --retries many\n1")
    assert isinstance(result.error, UsageError)
    assert str(result.error) == "%%task: argument --retries: invalid int value: 'many'"


def test_an_unknown_upstream_is_refused_naming_it(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    result = ipython.run("%%task load --upstream nope\n1")
    assert isinstance(result.error, UsageError)
    assert "upstream 'nope' is not a task of DAG 'etl'" in str(result.error)
    assert "load" not in ipython.magics.kernel_dags.dag("etl").task_dict


def test_a_cycle_is_refused_and_the_dag_stays_as_it_was(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    ipython.ok("%%task a --upstream start\n1")
    ipython.ok("%%task b --upstream a\n2")
    result = ipython.run("%%task a --upstream b\n1")
    assert isinstance(result.error, UsageError) and "cycle" in str(result.error)
    assert ipython.magics.kernel_dags.dag("etl").task_dict["a"].upstream_task_ids == {"start"}


def test_a_syntax_error_is_reported_when_the_cell_is_defined_with_its_line(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    result = ipython.run("%%task broken\nx = 1\ny = (\n")
    assert isinstance(result.error, UsageError)
    assert "line 2" in str(result.error) and "SyntaxError" in str(result.error)


def test_running_a_defining_cell_again_replaces_the_task_and_its_edges(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    ipython.ok("%%task a\n1")
    ipython.ok("%%task b --upstream a start\n2")
    ipython.ok("%%task b --upstream start\n3")
    dag = ipython.magics.kernel_dags.dag("etl")
    assert dag.task_dict["b"].upstream_task_ids == {"start"}
    assert dag.task_dict["b"].source == "3"
    assert len(dag.task_dict) == 3


def test_a_task_before_any_dag_is_a_usage_error(ipython: Shell) -> None:
    result = ipython.run("%%task lonely\n1")
    assert isinstance(result.error, UsageError) and "no DAG yet" in str(result.error)


def test_setup_runs_now_and_before_every_cell_task(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    ipython.ok("%%setup\nimport math\nSCALE = 10")
    assert ipython.shell.user_ns["SCALE"] == 10
    assert ipython.ok("%%task scaled --run\nmath.floor(2.5) * SCALE").value == 20


def test_a_task_that_kills_its_process_fails_and_the_kernel_lives_on(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    ipython.ok("%%task crash --upstream start\nimport os\nprint('going')\nos._exit(3)")
    result = ipython.run("%dag test etl")
    assert isinstance(result.error, UsageError) and "task crash failed" in str(result.error)
    assert "crash       failed" in result.out.replace("  ", "  ") or "failed" in result.out
    assert "exited with code 3" in result.out
    assert ipython.ok("1 + 1").value == 2


def test_every_magic_prints_its_help(ipython: Shell) -> None:
    for line in ("%dag -h", "%nbflow -h", "%xcom -h", "%task -h", "%bash_task -h", "%setup -h", "%notebook_task -h"):
        assert "usage:" in ipython.ok(line).out, line
    assert "usage: %%dag" in ipython.ok("%%dag -h\npass").out
    assert "usage: %%dag" in ipython.ok("%dag -h").out  # where a user looks when `%%dag -h` has no body


def test_a_template_in_a_definition_line_is_kept_as_written(ipython: Shell, nbflow_env) -> None:
    # IPython expands `{name}` in magic lines (and turns `{{` into `{`); the saved notebook is read without that.
    from tests.ipynb import write_cells
    lines = ["%%dag tmpl\npass", "%notebook_task nb --notebook step.ipynb -p ds \"{{ ds }}\" -p value 1",
             "%%task t --upstream nb\n'{{ not a template in a cell body }}'"]
    for cell in lines:
        ipython.ok(cell)
    assert ipython.magics.kernel_dags.dag("tmpl").task_dict["nb"].parameters == {"ds": "{{ ds }}", "value": 1}
    write_cells(nbflow_env.dags / "tmpl.ipynb", *lines)
    row = next(line for line in ipython.ok("%dag list").out.splitlines() if line.startswith("tmpl "))
    assert row.endswith("same as saved")
