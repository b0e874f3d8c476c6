"""Per-attempt log files: $NBFLOW_HOME/logs/dag_id=D/run_id=R/task_id=T/[map_index=M/]attempt=N.log."""
from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from nbflow.utils.masking import masker

_safe = str.maketrans({"/": "_", ":": "_", "\\": "_"})
# Loggers with their own handler into the attempt's log; the root handler leaves them alone.
_ROUTED_LOGGERS = ("nbflow.task", "nbflow.secrets")


def attempt_log_path(base: Path, dag_id: str, run_id: str, task_id: str, try_number: int,
                     map_index: int = -1) -> Path:
    folder = base / f"dag_id={dag_id}" / f"run_id={run_id.translate(_safe)}" / f"task_id={task_id}"
    if map_index >= 0:
        folder = folder / f"map_index={map_index}"
    return folder / f"attempt={try_number}.log"


class _MaskedTee(io.TextIOBase):
    """Writes masked text to the log file and, optionally, to an echo stream (the terminal)."""

    def __init__(self, file: TextIO, echo: TextIO | None, prefix: str = "") -> None:
        self._file, self._echo, self._prefix = file, echo, prefix
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not text:
            return 0
        masked = masker.redact(text)
        with self._lock:
            self._file.write(masked)
            self._file.flush()
            if self._echo is not None:
                self._echo.write(masked)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()
            if self._echo is not None:
                self._echo.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


@contextlib.contextmanager
def capture_to_log(path: Path, *, echo: TextIO | None = None) -> Iterator[TextIO]:
    """Route print() output and the `nbflow.task` and `nbflow.secrets` loggers into the attempt's log file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", buffering=1) as file:
        tee = _MaskedTee(file, echo)
        handler = logging.StreamHandler(tee)
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s - %(message)s"))
        task_logger = logging.getLogger("nbflow.task")
        task_logger.addHandler(handler)
        # A secrets backend that is down warns on `nbflow.secrets`; the attempt's log must say so.
        secrets_logger = logging.getLogger("nbflow.secrets")
        secrets_logger.addHandler(handler)
        previous_level = task_logger.level
        task_logger.setLevel(logging.INFO)
        # Records of any other logger the task's code uses (logging.info(), a module's own logger) belong in
        # the attempt's log too, as in Airflow; only this thread's, so other threads' logging stays out.
        others = logging.StreamHandler(tee)
        others.setFormatter(handler.formatter)
        thread = threading.get_ident()
        others.addFilter(lambda record: record.thread == thread and not record.name.startswith(_ROUTED_LOGGERS))
        root = logging.getLogger()
        root.addHandler(others)
        root_level = root.level
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = tee  # type: ignore[assignment]
        try:
            yield tee  # type: ignore[misc]
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            task_logger.removeHandler(handler)
            secrets_logger.removeHandler(handler)
            task_logger.setLevel(previous_level)
            root.removeHandler(others)
            root.setLevel(root_level)
