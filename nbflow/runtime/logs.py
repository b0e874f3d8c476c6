"""Per-attempt log files: $NBFLOW_HOME/logs/dag_id=D/run_id=R/task_id=T/[map_index=M/]attempt=N.log.

A run's callbacks (run in child processes, see callbacks.py) log to dag_id=D/run_id=R/callbacks.log.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from nbflow.runtime.fd_output import copied_while_open
from nbflow.utils.masking import MaskedFormatter, masker

_safe = str.maketrans({"/": "_", ":": "_", "\\": "_"})
# Loggers with their own handler into the attempt's log; the root handler leaves them alone.
_ROUTED_LOGGERS = ("nbflow.task", "nbflow.secrets")
_FORMATTER = MaskedFormatter("[%(asctime)s] %(levelname)s - %(message)s")


def attempt_log_path(base: Path, dag_id: str, run_id: str, task_id: str, try_number: int,
                     map_index: int = -1) -> Path:
    # One Path built from one string: joining Path parts one by one cost ~15 µs per attempt.
    parts = [os.fspath(base), f"dag_id={dag_id}", f"run_id={run_id.translate(_safe)}", f"task_id={task_id}"]
    if map_index >= 0:
        parts.append(f"map_index={map_index}")
    parts.append(f"attempt={try_number}.log")
    return Path(os.path.join(*parts))


def callback_log_path(base: Path, dag_id: str, run_id: str) -> Path:
    """The log of every callback run for one DAG run, next to its tasks' folders."""
    return Path(os.path.join(os.fspath(base), f"dag_id={dag_id}", f"run_id={run_id.translate(_safe)}",
                             "callbacks.log"))


DEATH_MARK = "[nbflow] attempt died: "


def death_reason(exit_code: int | None) -> str:
    """How a process that ended with `exit_code` (negative: killed by that signal; None: unknown) died."""
    if exit_code is None:
        return "lost with its supervisor"
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            return f"signal {-exit_code}"
        return f"signal {-exit_code} ({name})"
    return f"exit code {exit_code}"


def note_death(log_folder: Path, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int,
               reason: str) -> None:
    """Append `[nbflow] attempt died: <reason>` to the attempt's log: whoever reads the log learns why it
    stopped (signal, exit code, timeout, heartbeat lost, cleared), not only the scheduler's stderr. Never raises."""
    if try_number < 1:
        return
    path = attempt_log_path(log_folder, dag_id, run_id, task_id, try_number, map_index)
    if _died_already(path):
        return  # the first to learn it said why (a scheduler that killed it; its worker then sees the signal)
    try:
        with _open_log(path) as file:
            file.write(f"{DEATH_MARK}{masker.redact(reason)}\n".encode())
    except OSError:
        pass  # the scheduler's log still says it


def _died_already(path: Path) -> bool:
    """Whether the log's last line already says why its attempt died."""
    try:
        with open(path, "rb") as file:
            file.seek(max(file.seek(0, os.SEEK_END) - 512, 0))
            tail = file.read().decode("utf-8", errors="replace").rstrip("\n").rsplit("\n", 1)[-1]
    except OSError:
        return False
    return tail.startswith(DEATH_MARK)


class _MaskedTee(io.TextIOBase):
    """Writes masked text to the log file and, optionally, to an echo stream (the terminal).

    The file is unbuffered: each write reaches it at once (a widget tails it while the task runs), as the
    line-buffered text file flushed after every write did, without a text and a buffer layer to build."""

    def __init__(self, file: BinaryIO, echo: TextIO | None, prefix: str = "") -> None:
        self._file, self._echo, self._prefix = file, echo, prefix
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not text:
            return 0
        masked = masker.redact(text)  # reads the secrets registered now, so a secret added mid-attempt is masked
        data = masked.encode("utf-8")
        with self._lock:
            while data:
                data = data[self._file.write(data):]
            if self._echo is not None:
                self._echo.write(masked)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._echo is not None:
                self._echo.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


class _FdWriter(io.TextIOBase):
    """Echo to a saved terminal descriptor while descriptors 1 and 2 point into the attempt's log."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "replace")
        while data:
            data = data[os.write(self.fd, data):]
        return len(text)


def _in_kernel() -> bool:
    """Whether this process is a running Jupyter kernel (whose descriptors 1 and 2 ipykernel watches itself)."""
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    return kernelapp is not None and kernelapp.IPKernelApp.initialized()


def _fileno(stream: object) -> int | None:
    try:
        return stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def _anonymous_file() -> int:
    """A file with no name (memory on Linux): what the task writes there never rests unmasked on disk."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("nbflow-attempt-output", os.MFD_CLOEXEC)
    import tempfile
    with tempfile.TemporaryFile() as handle:  # unlinked at once; outside $NBFLOW_HOME
        return os.dup(handle.fileno())


@contextlib.contextmanager
def _descriptors_into(tee: _MaskedTee) -> Iterator[None]:
    """Point descriptors 1 and 2 at an anonymous file while the attempt runs, its lines copied to the log through
    the tee (masked) as they come (fd_output.py). So what bypasses sys.stdout (os.system, a subprocess without
    pipes, a C library) reaches the attempt's log masked while the attempt runs, never the terminal or the
    scheduler's stderr unmasked. Not in a Jupyter kernel, whose output capture owns those descriptors."""
    if _in_kernel():
        yield
        return
    for stream in (tee._echo, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()  # type: ignore[union-attr]
    try:
        saved = (os.dup(1), os.dup(2))
    except OSError:  # no descriptors 1 and 2 to redirect
        yield
        return
    sink = _anonymous_file()
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    echo = tee._echo
    echo_fd = _fileno(echo) if echo is not None else None
    if echo_fd in (1, 2):  # the terminal itself: write to its saved descriptor, not into the sink
        tee._echo = _FdWriter(saved[echo_fd - 1])
    try:
        with copied_while_open(sink, tee):
            try:
                yield
            finally:
                os.dup2(saved[0], 1)  # restored first: nothing more lands in the file after its last copy
                os.dup2(saved[1], 2)
    finally:
        tee._echo = echo
        os.close(sink)
        os.close(saved[0])
        os.close(saved[1])


# Folders this process created or found: a retry in the same process opens its file without asking the
# file system again. Bounded, for long-lived processes (a kernel's scheduler) that run many attempts.
_known_folders: set[str] = set()
_MAX_KNOWN_FOLDERS = 4096


def _open_log(path: Path) -> BinaryIO:
    """Open the attempt's log for appending, unbuffered, creating its folders when missing."""
    name = os.fspath(path)
    folder = os.path.dirname(name)
    if folder not in _known_folders:
        try:
            os.mkdir(folder)  # the usual case: the run's folder exists, this task's does not
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
        except FileExistsError:
            pass
        if len(_known_folders) >= _MAX_KNOWN_FOLDERS:
            _known_folders.clear()
        _known_folders.add(folder)
    try:
        return open(name, "ab", buffering=0)
    except FileNotFoundError:  # removed since we made it (a test's tmp folder, a log clean-up)
        os.makedirs(folder, exist_ok=True)
        return open(name, "ab", buffering=0)


def _set_levels(root: logging.Logger, root_level: int, task_logger: logging.Logger, task_level: int) -> None:
    """Give both loggers these levels with at most one reset of the loggers' caches: each setLevel empties the
    cache of every logger in the process (and a forked attempt copies each logger's memory page doing so)."""
    if root.level != root_level:
        task_logger.level = task_level  # the root's setLevel resets every logger's cache, this one's included
        root.setLevel(root_level)
    elif task_logger.level != task_level:
        task_logger.setLevel(task_level)


@contextlib.contextmanager
def capture_to_log(path: Path, *, echo: TextIO | None = None) -> Iterator[TextIO]:
    """Route print() output and the `nbflow.task` and `nbflow.secrets` loggers into the attempt's log file."""
    with _open_log(path) as file:
        tee = _MaskedTee(file, echo)
        handler = logging.StreamHandler(tee)
        handler.setFormatter(_FORMATTER)
        task_logger = logging.getLogger("nbflow.task")
        task_logger.addHandler(handler)
        # A secrets backend that is down warns on `nbflow.secrets`; the attempt's log must say so.
        secrets_logger = logging.getLogger("nbflow.secrets")
        secrets_logger.addHandler(handler)
        # Records of any other logger the task's code uses (logging.info(), a module's own logger) belong in
        # the attempt's log too, as in Airflow; only this thread's, so other threads' logging stays out.
        others = logging.StreamHandler(tee)
        others.setFormatter(_FORMATTER)
        thread = threading.get_ident()
        others.addFilter(lambda record: record.thread == thread and not record.name.startswith(_ROUTED_LOGGERS))
        root = logging.getLogger()
        root.addHandler(others)
        previous_level, root_level = task_logger.level, root.level
        _set_levels(root, logging.INFO if root.getEffectiveLevel() > logging.INFO else root_level,
                    task_logger, logging.INFO)
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = tee  # type: ignore[assignment]
        try:
            with _descriptors_into(tee):
                yield tee  # type: ignore[misc]
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            task_logger.removeHandler(handler)
            secrets_logger.removeHandler(handler)
            root.removeHandler(others)
            _set_levels(root, root_level, task_logger, previous_level)
