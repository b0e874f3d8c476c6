"""BashOperator: env, append_env, cwd, exit codes, output tail in errors, XCom, template files."""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.authoring.dag import DAG
from nbflow.operators.bash import BashOperator
from tests.authoring.helpers import load_dag, run
from tests.conftest import write_dag


def test_last_output_line_is_the_xcom(tmp_path: Path) -> None:
    with DAG("last_line") as d:
        BashOperator(task_id="b", bash_command="echo first; echo second")
    ran = run(d, tmp_path)
    assert ran.states == {"b": "success"}
    assert ran.xcom("b") == "second"
    assert "first\nsecond" in ran.log("b")


def test_command_with_no_output_pushes_nothing(tmp_path: Path) -> None:
    with DAG("silent") as d:
        BashOperator(task_id="b", bash_command="true")
    assert run(d, tmp_path).xcom("b") is None


def test_env_replaces_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_PARENT", "parent")
    with DAG("env_only") as d:
        BashOperator(task_id="b", bash_command='echo "${MINE}-${FROM_PARENT:-unset}"', env={"MINE": "mine"})
    assert run(d, tmp_path).xcom("b") == "mine-unset"


def test_append_env_adds_to_the_inherited_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_PARENT", "parent")
    with DAG("env_append") as d:
        BashOperator(task_id="b", bash_command='echo "${MINE}-${FROM_PARENT}"', env={"MINE": "mine"},
                     append_env=True)
    assert run(d, tmp_path).xcom("b") == "mine-parent"


def test_no_env_inherits_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_PARENT", "parent")
    with DAG("env_inherit") as d:
        BashOperator(task_id="b", bash_command='echo "$FROM_PARENT"')
    assert run(d, tmp_path).xcom("b") == "parent"


def test_env_values_are_templated(tmp_path: Path) -> None:
    with DAG("env_templated") as d:
        BashOperator(task_id="b", bash_command='echo "$DAY"', env={"DAY": "{{ ds }}"})
    assert run(d, tmp_path).xcom("b") == "2025-01-02"


def test_cwd_is_the_working_directory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with DAG("cwd") as d:
        BashOperator(task_id="b", bash_command="pwd", cwd=str(work))
    assert run(d, tmp_path).xcom("b") == str(work)


def test_missing_cwd_fails_naming_it(tmp_path: Path) -> None:
    with DAG("cwd_missing") as d:
        BashOperator(task_id="b", bash_command="pwd", cwd=str(tmp_path / "nope"))
    ran = run(d, tmp_path)
    assert ran.states == {"b": "failed"}
    assert "is not a folder" in ran.log("b")


def test_exit_code_99_skips_the_task(tmp_path: Path) -> None:
    with DAG("skip99") as d:
        BashOperator(task_id="b", bash_command="exit 99") >> BashOperator(task_id="after", bash_command="true")
    ran = run(d, tmp_path)
    assert ran.states == {"b": "skipped", "after": "skipped"}
    assert ran.state == "success"


def test_skip_on_exit_code_may_be_changed(tmp_path: Path) -> None:
    with DAG("skip_custom") as d:
        BashOperator(task_id="b", bash_command="exit 3", skip_on_exit_code=[3, 4])
        BashOperator(task_id="c", bash_command="exit 99", skip_on_exit_code=None)
    assert run(d, tmp_path).states == {"b": "skipped", "c": "failed"}


def test_non_zero_exit_fails_with_the_output_tail_in_the_error(tmp_path: Path) -> None:
    with DAG("fails") as d:
        BashOperator(task_id="b", bash_command="for i in $(seq 1 30); do echo line$i; done; exit 1")
    ran = run(d, tmp_path)
    assert ran.states == {"b": "failed"}
    message = ran.log("b").split("[nbflow] task failed: ", 1)[1]  # the error, after the streamed output
    assert "bash command failed with exit code 1; last output:" in message
    assert "line30" in message and "line11" in message and "line10\n" not in message, "the last 20 lines"


def test_failure_error_reaches_the_run_event(tmp_path: Path) -> None:
    from nbflow.runtime.inprocess import make_run_info, run_dag_in_process

    with DAG("fail_event") as d:
        BashOperator(task_id="b", bash_command="echo oops-output; exit 2")
    events: list = []
    run_dag_in_process(d, run=make_run_info(d, None, {}), log_folder=tmp_path / "logs", on_event=events.append)
    finished = [e for e in events if e.kind == "finished"]
    assert finished[0].state == "failed"
    assert "exit code 2" in finished[0].error and "oops-output" in finished[0].error


def test_bash_command_is_templated(tmp_path: Path) -> None:
    with DAG("templ", params={"who": "you"}) as d:
        BashOperator(task_id="b", bash_command="echo {{ params.who }} {{ ds_nodash }} {{ task.task_id }}")
    assert run(d, tmp_path).xcom("b") == "you 20250102 b"


def test_sh_template_file_is_found_next_to_the_dag_file(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    write_dag(dags, "scripts/hello.sh", 'echo "hello {{ ds }} from $(basename $0)"\n')
    path = write_dag(dags, "script_dag.py", """
        from nbflow import DAG
        from nbflow.operators.bash import BashOperator

        with DAG("script_dag") as dag:
            BashOperator(task_id="hello", bash_command="scripts/hello.sh")
    """)
    ran = run(load_dag(path, "script_dag"), tmp_path)
    assert ran.states == {"hello": "success"}
    assert ran.xcom("hello") == "hello 2025-01-02 from bash"


def test_sh_template_file_is_found_on_the_template_searchpath(tmp_path: Path) -> None:
    shared = tmp_path / "shared_scripts"
    write_dag(shared, "report.sh", "echo report {{ macros.ds_add(ds, -1) }}\n")
    path = write_dag(tmp_path / "dags", "searchpath_dag.py", f"""
        from nbflow import DAG
        from nbflow.operators.bash import BashOperator

        with DAG("searchpath_dag", template_searchpath=[{str(shared)!r}]) as dag:
            BashOperator(task_id="report", bash_command="report.sh")
    """)
    assert run(load_dag(path, "searchpath_dag"), tmp_path).xcom("report") == "report 2025-01-01"


def test_missing_template_file_fails_naming_file_and_folders(tmp_path: Path) -> None:
    path = write_dag(tmp_path / "dags", "missing_script.py", """
        from nbflow import DAG
        from nbflow.operators.bash import BashOperator

        with DAG("missing_script") as dag:
            BashOperator(task_id="gone", bash_command="gone.sh")
    """)
    ran = run(load_dag(path, "missing_script"), tmp_path)
    assert ran.states == {"gone": "failed"}
    log = ran.log("gone")
    assert "task 'gone': template field 'bash_command': template file 'gone.sh' was not found" in log
    assert str(tmp_path / "dags") in log


def test_empty_command_fails(tmp_path: Path) -> None:
    with DAG("empty_cmd") as d:
        BashOperator(task_id="b", bash_command="  ")
    ran = run(d, tmp_path)
    assert ran.states == {"b": "failed"}
    assert "bash_command is empty" in ran.log("b")


def test_context_variables_are_in_the_environment(tmp_path: Path) -> None:
    with DAG("ctx_env") as d:
        BashOperator(task_id="b", bash_command='echo "$NBFLOW_CTX_DAG_ID $NBFLOW_CTX_TASK_ID $NBFLOW_CTX_TRY_NUMBER"')
    assert run(d, tmp_path).xcom("b") == "ctx_env b 1"


def test_execution_timeout_kills_the_bash_process(tmp_path: Path) -> None:
    import os
    import time

    pid_file = tmp_path / "pid"
    with DAG("bash_timeout") as d:
        BashOperator(task_id="b", bash_command=f"echo $$ > {pid_file}; sleep 30", execution_timeout=0.5)
    ran = run(d, tmp_path)
    assert ran.states == {"b": "failed"}
    assert "timed out" in ran.log("b")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the kill is asynchronous: wait, bounded, for the process to go
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        raise AssertionError(f"bash (pid {pid}) still runs after the task timed out")
