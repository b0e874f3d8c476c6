"""NotebookOperator in process (run_dag_in_process): real notebooks in real kernels."""
from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from nbflow.authoring.dag import DAG
from nbflow.operators.notebook import NotebookOperator
from nbflow.operators.python import PythonOperator
from tests.authoring.helpers import Ran, run
from tests.notebooks.conftest import outputs_text, read_notebook, write_notebook
from tests.runtime.scheduler_helpers import wait_for

pytestmark = pytest.mark.timeout(120)

RECORD = "from nbflow.notebook import record\n"


def executed(nb_env, dag_id: str, task_id: str, attempt: int = 1) -> Path:
    runs = list((nb_env.home / "notebooks" / f"dag_id={dag_id}").glob(f"run_id=*/task_id={task_id}"))
    assert len(runs) == 1, runs
    return runs[0] / f"attempt={attempt}.ipynb"


def test_parameters_from_the_context_are_injected_after_the_parameters_cell(nb_env, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "greet.ipynb", RECORD + "record('greeting', f'{who} on {day} ({n})')",
                              parameters="who = 'nobody'\nday = ''\nn = 0")
    with DAG("greet", params={"who": "ada"}) as dag:
        NotebookOperator(task_id="hello", input_nb=str(notebook),
                         parameters={"who": "{{ params.who }}", "day": "{{ ds }}", "n": 3})
    ran = run(dag, tmp_path)
    assert ran.state == "success", ran.log("hello")
    assert ran.xcom("hello")["greeting"] == "ada on 2025-01-02 (3)"
    nb = read_notebook(executed(nb_env, "greet", "hello"))
    assert [c.metadata.get("tags") for c in nb.cells[:2]] == [["parameters"], ["injected-parameters"]]
    assert "who = \"ada\"" in nb.cells[1].source and "n = 3" in nb.cells[1].source
    assert nb.metadata.papermill["parameters"] == {"who": "ada", "day": "2025-01-02", "n": 3}


def test_a_notebook_without_a_parameters_cell_gets_the_injected_cell_first(nb_env, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "plain.ipynb", RECORD + "record('twice', x * 2)")
    with DAG("plain") as dag:
        NotebookOperator(task_id="t", input_nb=str(notebook), parameters={"x": 21})
    ran = run(dag, tmp_path)
    assert ran.xcom("t")["twice"] == 42
    assert read_notebook(executed(nb_env, "plain", "t")).cells[0].metadata["tags"] == ["injected-parameters"]
    assert "no cell tagged 'parameters'" in ran.log("t")


def test_xcom_is_the_recorded_values_plus_the_output_notebook(nb_env, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "rec.ipynb", RECORD + "import datetime\n"
                              "record('rows', 3)\nrecord('names', ['a', 'b'])\n"
                              "record('when', datetime.date(2025, 1, 2))\nrecord('rows', 4)")
    with DAG("rec") as dag:
        NotebookOperator(task_id="t", input_nb=str(notebook))
    ran = run(dag, tmp_path)
    value = ran.xcom("t")
    assert value == {"rows": 4, "names": ["a", "b"], "when": dt.date(2025, 1, 2),
                     "output_notebook": str(executed(nb_env, "rec", "t"))}
    assert ran.xcom("t", key="rows") == 4  # one XCom per record too, so t.output["rows"] works
    assert Path(value["output_notebook"]).is_file()
    assert "recorded rows = 3" in ran.log("t")


def test_upstream_xcoms_reach_notebook_parameters(nb_env, tmp_path: Path) -> None:
    extract = write_notebook(tmp_path / "extract.ipynb", RECORD + "record('path', '/data/x.csv')\nrecord('count', 7)")
    report = write_notebook(tmp_path / "report.ipynb", RECORD + "record('seen', [path, count, label])",
                            parameters="path = ''\ncount = 0\nlabel = ''")
    with DAG("xcoms") as dag:
        first = NotebookOperator(task_id="extract", input_nb=str(extract))
        second = NotebookOperator(task_id="report", input_nb=str(report), parameters={
            "path": first.output["path"], "count": first.output["count"],
            "label": "{{ ti.xcom_pull(task_ids='extract')['count'] }} rows"})
        first >> second
    ran = run(dag, tmp_path)
    assert ran.state == "success", ran.log("report")
    assert ran.xcom("report")["seen"] == ["/data/x.csv", 7, "7 rows"]


def test_a_failing_cell_fails_the_task_naming_notebook_cell_and_error(nb_env, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "boom.ipynb", "print('before')", "1 / 0", "print('never')",
                              parameters="x = 1")
    with DAG("boom") as dag:
        NotebookOperator(task_id="t", input_nb=str(notebook), parameters={"x": 2})
    ran = run(dag, tmp_path)
    assert ran.state == "failed"
    log = ran.log("t")
    line = next(line for line in log.splitlines() if "task failed" in line)
    assert "NotebookCellError" in line and str(notebook) in line
    assert "cell 3 (In [4])" in line and "ZeroDivisionError: division by zero" in line
    output = executed(nb_env, "boom", "t")
    assert str(output) in line
    nb = read_notebook(output)  # saved even though it failed, with papermill's error markers
    assert "papermill-error-cell-tag" in nb.cells[0].metadata["tags"]
    assert "before" in outputs_text(nb) and "never" not in outputs_text(nb)
    assert nb.metadata.papermill["exception"] is True
    assert "ZeroDivisionError" in log and "before" in log  # the traceback and outputs reached the log


def test_a_retry_writes_a_new_attempt_notebook(nb_env, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    notebook = write_notebook(tmp_path / "flaky.ipynb", "from pathlib import Path\n"
                              f"marker = Path({str(marker)!r})\n"
                              "if not marker.exists():\n    marker.touch()\n    raise RuntimeError('first try fails')\n"
                              "print('second try works')")
    with DAG("flaky", default_args={"retries": 1, "retry_delay": 0}) as dag:
        NotebookOperator(task_id="t", input_nb=str(notebook))
    ran = run(dag, tmp_path)
    assert ran.state == "success"
    assert ran.row("t")["try_number"] == 2
    first, second = executed(nb_env, "flaky", "t", 1), executed(nb_env, "flaky", "t", 2)
    assert "first try fails" in outputs_text(read_notebook(first))
    assert "second try works" in outputs_text(read_notebook(second))
    assert ran.xcom("t")["output_notebook"] == str(second)


def test_missing_notebook_fails_naming_the_task_and_where_it_looked(nb_env, tmp_path: Path) -> None:
    with DAG("missing") as dag:
        NotebookOperator(task_id="t", input_nb="nowhere.ipynb", retries=3)
    ran = run(dag, tmp_path)
    assert ran.state == "failed" and ran.row("t")["try_number"] == 1  # not retried: it cannot appear by itself
    log = ran.log("t")
    assert "NotebookNotFound: task 't': notebook 'nowhere.ipynb' not found" in log
    assert str(Path(nb_env.dags.parent / "notebooks" / "nowhere.ipynb")) in log


def test_missing_kernel_fails_naming_the_task_and_the_installed_kernels(nb_env, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "k.ipynb", "1", kernel="no-such-kernel")
    with DAG("kernel") as dag:
        NotebookOperator(task_id="from_notebook", input_nb=str(notebook))
        NotebookOperator(task_id="from_argument", input_nb=str(notebook), kernel_name="other-missing")
    ran = run(dag, tmp_path)
    assert ran.states == {"from_notebook": "failed", "from_argument": "failed"}
    assert "KernelNotFound: task 'from_notebook': no Jupyter kernel named 'no-such-kernel' (the kernelspec of " \
           "k.ipynb); installed kernels: " in ran.log("from_notebook")
    assert "python3" in ran.log("from_notebook")
    assert "task 'from_argument': no Jupyter kernel named 'other-missing' (kernel_name)" in ran.log("from_argument")


def test_unreadable_notebook_and_unwritable_parameter_fail_naming_the_task(nb_env, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [', encoding="utf-8")
    fine = write_notebook(tmp_path / "fine.ipynb", "1", parameters="when = None")
    with DAG("bad") as dag:
        NotebookOperator(task_id="unreadable", input_nb=str(broken))
        NotebookOperator(task_id="param", input_nb=str(fine), parameters={"when": dt.datetime(2025, 1, 2)})
    ran = run(dag, tmp_path)
    assert ran.states == {"unreadable": "failed", "param": "failed"}
    assert f"NotebookUnreadable: task 'unreadable': {broken} is not a Jupyter notebook" in ran.log("unreadable")
    assert "NotebookParameterError: task 'param': parameter 'when' is a datetime.datetime, which cannot be " \
           "written into the notebook" in ran.log("param")


def test_the_log_grows_while_the_notebook_runs(nb_env, tmp_path: Path) -> None:
    release = tmp_path / "release"
    notebook = write_notebook(tmp_path / "slow.ipynb", "print('first step done', flush=True)",
                              "import time, pathlib\n"
                              f"while not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.02)\n"
                              "print('second step done')")
    with DAG("slow") as dag:
        NotebookOperator(task_id="t", input_nb=str(notebook))
    box: dict[str, Ran] = {}
    runner = threading.Thread(target=lambda: box.update(ran=run(dag, tmp_path)), daemon=True)
    runner.start()
    try:
        log_file = wait_for(lambda: next((tmp_path / "logs").glob("dag_id=slow/run_id=*/task_id=t/attempt=1.log"),
                                         None))
        text = wait_for(lambda: t if "[nbflow] cell 1 (In [2])" in (t := log_file.read_text()) else None)
        assert "first step done" in text  # the first cell's output is in the log already,
        assert "second step done" not in text  # while the second cell still runs
    finally:
        release.touch()
    runner.join(60)
    assert box["ran"].state == "success"
    assert "second step done" in log_file.read_text()


def test_secrets_are_masked_in_the_log_and_the_executed_notebook(nb_env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW_CONN_WAREHOUSE", "postgresql://etl:kernel-s3cret@db/wh")
    monkeypatch.setenv("NBFLOW_CONN_SOURCE", "postgresql://etl:task-s3cret@db/src")
    notebook = write_notebook(tmp_path / "peek.ipynb", "from nbflow.notebook import Connection\n"
                              "print('kernel sees', Connection.get('warehouse').password)\n"
                              "print('task passed', source_password)\nprint('token', api_token)",
                              parameters="source_password = ''\napi_token = ''")
    with DAG("peek") as dag:
        NotebookOperator(task_id="t", input_nb=str(notebook),
                         parameters={"source_password": "{{ conn.source.password }}", "api_token": "tok-12345"})
    ran = run(dag, tmp_path)
    assert ran.state == "success", ran.log("t")
    log = ran.log("t")
    assert "kernel sees ***" in log and "task passed ***" in log and "token ***" in log
    saved = executed(nb_env, "peek", "t").read_text()
    assert "kernel sees ***" in saved
    for secret in ("kernel-s3cret", "task-s3cret", "tok-12345"):  # outputs, injected cell, papermill metadata
        assert secret not in saved and secret not in log


def test_cell_timeout_fails_the_cell_that_ran_too_long(nb_env, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "sleepy.ipynb", "print('awake')", "import time\ntime.sleep(60)")
    with DAG("sleepy") as dag:
        NotebookOperator(task_id="t", input_nb=str(notebook), cell_timeout=0.5)
    ran = run(dag, tmp_path)
    assert ran.state == "failed"
    log = ran.log("t")
    assert "failed at cell 1 (In [2]): CellTimeoutError: the cell ran longer than 0.5 s (cell_timeout)" in log
    assert "awake" in outputs_text(read_notebook(executed(nb_env, "sleepy", "t")))


def test_execution_timeout_stops_the_notebook_and_keeps_the_executed_copy(nb_env, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "long.ipynb", "print('started')", "import time\ntime.sleep(60)")
    with DAG("long") as dag:
        NotebookOperator(task_id="t", input_nb=str(notebook), execution_timeout=dt.timedelta(seconds=1.5))
    ran = run(dag, tmp_path)
    assert ran.state == "failed"
    assert "NbflowTaskTimeout: task 't' timed out after 1.5 s (execution_timeout) at cell 1 (In [2]) of " \
           f"notebook {notebook}" in ran.log("t")
    text = outputs_text(read_notebook(executed(nb_env, "long", "t")))
    assert "started" in text and "reached its execution_timeout" in text


def test_each_run_gets_a_fresh_kernel(nb_env, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "state.ipynb", RECORD + "import os\n"
                              "record('fresh', 'leftover' not in globals())\nleftover = 1\n"
                              "record('pid', os.getpid())\nrecord('cwd', os.getcwd())")
    with DAG("fresh") as dag:
        tasks = [NotebookOperator(task_id=f"t{i}", input_nb=str(notebook)) for i in range(4)]
        for up, down in zip(tasks, tasks[1:]):
            up >> down
    ran = run(dag, tmp_path)
    values = [ran.xcom(f"t{i}") for i in range(4)]
    assert all(v["fresh"] for v in values)
    assert len({v["pid"] for v in values}) == 4
    assert {v["cwd"] for v in values} == {str(tmp_path)}  # the notebook's folder, even for pre-started kernels


def test_allow_errors_runs_every_cell_and_succeeds(nb_env, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "lenient.ipynb", "raise ValueError('tolerated')", RECORD + "record('after', 1)")
    with DAG("lenient") as dag:
        NotebookOperator(task_id="t", input_nb=str(notebook), allow_errors=True, report_mode=True)
        PythonOperator(task_id="next", python_callable=lambda: None)
    ran = run(dag, tmp_path)
    assert ran.states == {"t": "success", "next": "success"}
    assert ran.xcom("t")["after"] == 1
    assert "ValueError: tolerated" in ran.log("t")
    nb = read_notebook(executed(nb_env, "lenient", "t"))
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") for c in nb.cells if c.cell_type == "code")


def test_papermill_operator_is_the_same_operator_at_airflows_path() -> None:
    from nbflow.operators.notebook import PapermillOperator
    from nbflow.providers.papermill.operators.papermill import PapermillOperator as provided
    assert provided is PapermillOperator is NotebookOperator
    with DAG("compat"):
        op = PapermillOperator(task_id="t", input_nb="x.ipynb", language_name="python", nb_timeout=5)
    assert op.language == "python" and op.cell_timeout == 5.0


@pytest.mark.parametrize("parameters", [{"1bad": 1}, {"x": float("nan")}, {"x": {1j: 1}}])
def test_parameters_that_cannot_be_written_are_refused(parameters) -> None:
    from nbflow.exceptions import NotebookParameterError
    from nbflow.operators.notebook import check_parameters
    with pytest.raises(NotebookParameterError, match="task 't'"):
        check_parameters("t", parameters)
