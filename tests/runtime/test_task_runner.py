"""One attempt of one task: timeouts, hooks around execute, XComs of earlier attempts, log masking."""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any, ClassVar

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.authoring.dag import DAG
from nbflow.operators.python import PythonOperator
from nbflow.runtime.inprocess import make_run_info
from nbflow.runtime.task_runner import AttemptRequest, run_attempt
from nbflow.runtime.xcom import MemoryXComStore
from nbflow.utils.masking import mask_secret, masker
from tests.authoring.helpers import run


def attempt(task: BaseOperator, tmp_path: Path, try_number: int = 1, xcoms: MemoryXComStore | None = None,
            echo: io.StringIO | None = None) -> Any:
    dag = task.dag
    request = AttemptRequest(task=task, run=make_run_info(dag, dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc), {}),
                             map_index=-1, try_number=try_number, params={}, log_folder=tmp_path / "logs")
    return run_attempt(request, xcoms or MemoryXComStore(), echo=echo)


def test_attempt_outcome_names_state_try_and_log(tmp_path: Path) -> None:
    with DAG("outcome"):
        task = PythonOperator(task_id="t", python_callable=lambda: print("hi"))
    outcome = attempt(task, tmp_path, try_number=3)
    assert (outcome.state, outcome.try_number, outcome.error) == ("success", 3, None)
    assert outcome.log_path.endswith("task_id=t/attempt=3.log")
    assert "hi" in Path(outcome.log_path).read_text()


def test_execution_timeout_fails_the_attempt(tmp_path: Path) -> None:
    import time

    with DAG("timeout") as d:
        PythonOperator(task_id="slow", python_callable=lambda: time.sleep(5),
                       execution_timeout=dt.timedelta(seconds=0.2), retries=1, retry_delay=0)
    ran = run(d, tmp_path)
    assert ran.states == {"slow": "failed"}
    assert ran.row("slow")["try_number"] == 2, "a timeout is retried"
    assert "NbflowTaskTimeout: task 'slow' timed out after 0.2 s (execution_timeout)" in ran.log("slow")


def test_pre_and_post_execute_surround_execute(tmp_path: Path) -> None:
    class Traced(BaseOperator):
        calls: ClassVar[list[str]] = []

        def pre_execute(self, context: dict[str, Any]) -> None:
            self.calls.append("pre")

        def execute(self, context: dict[str, Any]) -> str:
            self.calls.append("execute")
            return "result"

        def post_execute(self, context: dict[str, Any], result: Any = None) -> None:
            self.calls.append(f"post:{result}")

    with DAG("hooks"):
        task = Traced(task_id="t")
    assert attempt(task, tmp_path).state == "success"
    assert Traced.calls == ["pre", "execute", "post:result"]


def test_a_new_attempt_starts_without_the_xcoms_of_the_last_one(tmp_path: Path) -> None:
    def push_then_maybe_fail(ti: Any) -> None:
        if ti.try_number == 1:
            ti.xcom_push(key="partial", value="from try 1")
            raise RuntimeError("first try")
        return None

    with DAG("stale"):
        task = PythonOperator(task_id="t", python_callable=push_then_maybe_fail, retries=1)
    xcoms = MemoryXComStore()
    assert attempt(task, tmp_path, 1, xcoms).state == "failed"
    assert attempt(task, tmp_path, 2, xcoms).state == "success"
    from nbflow.runtime.run_info import TIKey
    key = TIKey("stale", "t", make_run_info(task.dag, dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc), {}).run_id, -1)
    assert xcoms.get(key, "partial") is None


def test_the_parsed_task_is_not_changed_by_rendering(tmp_path: Path) -> None:
    with DAG("pure"):
        task = PythonOperator(task_id="t", python_callable=lambda x: x, op_args=["{{ ds }}"])
    attempt(task, tmp_path)
    assert task.op_args == ["{{ ds }}"]


def test_registered_secrets_are_masked_in_the_log_and_the_echo(tmp_path: Path) -> None:
    mask_secret("hunter2-password")
    try:
        with DAG("masked"):
            task = PythonOperator(task_id="t", python_callable=lambda: print("password is hunter2-password"))
        echo = io.StringIO()
        outcome = attempt(task, tmp_path, echo=echo)
        log = Path(outcome.log_path).read_text()
        assert "hunter2-password" not in log and "password is ***" in log
        assert "hunter2-password" not in echo.getvalue() and "password is ***" in echo.getvalue()
    finally:
        masker.clear()


def test_a_task_error_never_escapes_the_attempt(tmp_path: Path) -> None:
    class Exploding(BaseOperator):
        def execute(self, context: dict[str, Any]) -> None:
            raise SystemError("very broken")

    with DAG("contained"):
        task = Exploding(task_id="t")
    outcome = attempt(task, tmp_path)
    assert outcome.state == "failed" and outcome.error == "SystemError: very broken"
    assert outcome.retryable


def test_records_of_any_logger_the_task_uses_reach_its_log(tmp_path: Path) -> None:
    import logging

    def work() -> None:
        logging.getLogger("my_dag_module").info("from the module's logger")
        logging.getLogger("my_dag_module").debug("debug stays out")
        logging.warning("from the root logger")

    root_level = logging.getLogger().level
    with DAG("loggers"):
        task = PythonOperator(task_id="t", python_callable=work)
    log = Path(attempt(task, tmp_path).log_path).read_text()
    assert "INFO - from the module's logger" in log
    assert "WARNING - from the root logger" in log
    assert "debug stays out" not in log
    assert logging.getLogger().level == root_level, "the root logger is left as it was"


def test_the_task_logger_is_written_once(tmp_path: Path) -> None:
    with DAG("once"):
        task = PythonOperator(task_id="t", python_callable=lambda ti: ti.log.info("only once"))
    log = Path(attempt(task, tmp_path).log_path).read_text()
    assert log.count("only once") == 1
