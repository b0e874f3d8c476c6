"""An attempt's log file: masked as secrets appear, readable while the task runs, folders made when missing,
and the logging tree left as it was."""
from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from typing import Any

from nbflow.authoring.dag import DAG
from nbflow.operators.python import PythonOperator
from nbflow.runtime.inprocess import make_run_info
from nbflow.runtime.logs import attempt_log_path
from nbflow.runtime.task_runner import AttemptRequest, run_attempt
from nbflow.runtime.xcom import MemoryXComStore
from nbflow.utils.masking import mask_secret, masker

LOGICAL = dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)


def attempt(task: PythonOperator, log_folder: Path, try_number: int = 1) -> Any:
    request = AttemptRequest(task=task, run=make_run_info(task.dag, LOGICAL, {}), map_index=-1,
                             try_number=try_number, params={}, log_folder=log_folder)
    return run_attempt(request, MemoryXComStore())


def test_a_secret_registered_during_the_attempt_is_masked_from_then_on(tmp_path: Path) -> None:
    def reveal() -> None:
        logging.getLogger("nbflow.task").info("before: s3cret-token-1")
        mask_secret("s3cret-token-2")
        print("after: s3cret-token-2")
        logging.getLogger("nbflow.task").info("after: s3cret-token-2")
        logging.getLogger("some.library").warning("library: s3cret-token-2")

    masker.clear()
    try:
        with DAG("late_secret"):
            task = PythonOperator(task_id="t", python_callable=reveal)
        log = Path(attempt(task, tmp_path).log_path).read_text()
    finally:
        masker.clear()
    assert "before: s3cret-token-1" in log, "nothing registered yet: written as is"
    assert "s3cret-token-2" not in log
    assert log.count("***") == 3


def test_text_without_a_newline_is_in_the_file_before_the_task_ends(tmp_path: Path) -> None:
    seen: list[str] = []

    def partial() -> None:
        print("half a line", end="")
        path = attempt_log_path(tmp_path, "partial", make_run_info(task.dag, LOGICAL, {}).run_id, "t", 1)
        seen.append(path.read_text())

    with DAG("partial"):
        task = PythonOperator(task_id="t", python_callable=partial)
    assert attempt(task, tmp_path).state == "success"
    assert seen[0].endswith("half a line")


def test_a_log_folder_removed_between_attempts_is_made_again(tmp_path: Path) -> None:
    with DAG("removed"):
        task = PythonOperator(task_id="t", python_callable=lambda: print("ran"))
    first = Path(attempt(task, tmp_path).log_path)
    shutil.rmtree(tmp_path / "dag_id=removed")
    second = Path(attempt(task, tmp_path, try_number=2).log_path)
    assert not first.exists()
    assert second.read_text().startswith("[nbflow] removed.t[") and "ran\n" in second.read_text()


def test_logger_levels_and_handlers_are_as_before_after_an_attempt(tmp_path: Path) -> None:
    task_logger, root = logging.getLogger("nbflow.task"), logging.getLogger()
    before = (task_logger.level, root.level, list(task_logger.handlers), list(root.handlers),
              list(logging.getLogger("nbflow.secrets").handlers))
    levels_inside: list[int] = []

    def look() -> None:
        levels_inside.extend([task_logger.getEffectiveLevel(), logging.getLogger("x.y").getEffectiveLevel()])
        # isEnabledFor caches its answer per logger: the attempt's end must not leave these answers behind
        assert logging.getLogger("x.y").isEnabledFor(logging.INFO)
        assert logging.getLogger("nbflow.task.op").isEnabledFor(logging.INFO)

    with DAG("levels"):
        task = PythonOperator(task_id="t", python_callable=look)
    for level in (logging.NOTSET, logging.INFO, logging.DEBUG):
        task_logger.setLevel(level)
        try:
            assert attempt(task, tmp_path).state == "success"
            assert (task_logger.level, root.level) == (level, before[1])
            enabled = level != logging.NOTSET or root.level <= logging.INFO
            assert task_logger.isEnabledFor(logging.INFO) == enabled
            assert logging.getLogger("nbflow.task.op").isEnabledFor(logging.INFO) == enabled
            assert logging.getLogger("x.y").isEnabledFor(logging.INFO) == (root.getEffectiveLevel() <= logging.INFO)
        finally:
            task_logger.setLevel(before[0])
    assert levels_inside[0] == logging.INFO and levels_inside[1] <= logging.INFO
    assert (task_logger.level, root.level, task_logger.handlers, root.handlers,
            logging.getLogger("nbflow.secrets").handlers) == before
