"""What an attempt writes past sys.stdout (straight to descriptors 1 and 2) and the secrets of its environment."""
from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path
from typing import Any

import pytest

from nbflow.authoring.dag import DAG
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator
from nbflow.runtime.inprocess import make_run_info
from nbflow.runtime.task_runner import AttemptRequest, run_attempt
from nbflow.runtime.xcom import MemoryXComStore

LOGICAL = dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)
KEY = "k3y-from-the-environment-77"


def attempt(task: Any, log_folder: Path, echo: Any = None) -> Any:
    request = AttemptRequest(task=task, run=make_run_info(task.dag, LOGICAL, {}), map_index=-1,
                             try_number=1, params={}, log_folder=log_folder)
    return run_attempt(request, MemoryXComStore(), echo=echo)


@pytest.fixture(autouse=True)
def secret_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_VAR_SERVICE_API_KEY", KEY)


def test_output_written_to_the_descriptors_reaches_the_log_masked(tmp_path: Path, capfd) -> None:
    def write_past_python() -> None:
        os.write(1, f"fd1 {KEY}\n".encode())
        os.system('echo "fd2 $NBFLOW_VAR_SERVICE_API_KEY" >&2')

    with DAG("descriptors"):
        task = PythonOperator(task_id="t", python_callable=write_past_python)
    outcome = attempt(task, tmp_path)
    log = Path(outcome.log_path).read_text()
    assert outcome.state == "success"
    assert "fd1 ***" in log and "fd2 ***" in log and KEY not in log
    terminal = capfd.readouterr()
    assert KEY not in terminal.out + terminal.err


def test_a_bash_task_running_env_logs_the_secret_masked_even_though_nothing_read_it(tmp_path: Path) -> None:
    with DAG("env_dump"):
        task = BashOperator(task_id="env", bash_command="env")
    log = Path(attempt(task, tmp_path).log_path).read_text()
    assert "NBFLOW_VAR_SERVICE_API_KEY=***" in log and KEY not in log


def test_a_failing_attempts_error_is_masked(tmp_path: Path) -> None:
    def fail() -> None:
        raise PermissionError(f"the service refused {os.environ['NBFLOW_VAR_SERVICE_API_KEY']}")

    with DAG("refused"):
        task = PythonOperator(task_id="t", python_callable=fail)
    outcome = attempt(task, tmp_path)
    assert outcome.error == "PermissionError: the service refused ***"


def test_echo_to_the_terminal_still_reaches_it_once_while_descriptors_are_captured(tmp_path: Path, capfd) -> None:
    with DAG("echoed"):
        task = PythonOperator(task_id="t", python_callable=lambda: print("hello from the task"))
    terminal = os.fdopen(os.dup(1), "w")
    try:
        attempt(task, tmp_path, echo=terminal)
        terminal.flush()
    finally:
        terminal.close()
    out = capfd.readouterr().out
    assert out.count("hello from the task") == 1
    assert Path(next(tmp_path.rglob("attempt=1.log"))).read_text().count("hello from the task") == 1


def test_echo_to_a_python_stream_is_left_alone(tmp_path: Path) -> None:
    shown = io.StringIO()
    with DAG("echo_io"):
        task = PythonOperator(task_id="t", python_callable=lambda: print("to the stream"))
    attempt(task, tmp_path, echo=shown)
    assert "to the stream" in shown.getvalue()


def _wait_for_log(folder: Path, text: str, timeout: float = 60.0) -> None:
    """Poll the attempt's log until it holds `text` (the attempt is still running: it called us)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = list(folder.rglob("attempt=1.log"))
        if logs and text in logs[0].read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} did not reach the attempt's log within {timeout} s")


def test_descriptor_output_reaches_the_log_while_the_attempt_runs(tmp_path: Path) -> None:
    def write_and_watch() -> str:
        os.write(1, b"first line past sys.stdout\n")
        _wait_for_log(tmp_path, "first line past sys.stdout")  # raises (fails the attempt) if it never comes
        return "seen"

    with DAG("live"):
        task = PythonOperator(task_id="t", python_callable=write_and_watch)
    assert attempt(task, tmp_path).state == "success"


def test_a_secret_written_in_two_pieces_is_masked_whole(tmp_path: Path) -> None:
    def write_in_two_pieces() -> None:
        half = len(KEY) // 2
        os.write(1, f"a whole line\nkey={KEY[:half]}".encode())
        _wait_for_log(tmp_path, "a whole line")  # the copier has read the first piece, and kept it back
        os.write(1, f"{KEY[half:]} end\n".encode())

    with DAG("split"):
        task = PythonOperator(task_id="t", python_callable=write_in_two_pieces)
    outcome = attempt(task, tmp_path)
    log = Path(outcome.log_path).read_text()
    assert outcome.state == "success"
    assert "key=*** end" in log and KEY[:len(KEY) // 2] not in log


def test_an_unfinished_last_line_reaches_the_log_when_the_attempt_ends(tmp_path: Path) -> None:
    with DAG("unfinished"):
        task = PythonOperator(task_id="t", python_callable=lambda: os.write(2, f"no newline {KEY}".encode()))
    log = Path(attempt(task, tmp_path).log_path).read_text()
    assert "no newline ***\n" in log and KEY not in log
