"""DAG callbacks and the callbacks of attempts that died, run by the scheduler off its loop, each in a child.

A callback is user code (a Slack message, an e-mail, a slow API): run inside the scheduler's turn,
and worse inside the write transaction that decided it, one slow callback would hold every worker
back from recording results. So the scheduler collects them while deciding and hands them over
once its transaction has committed; one thread runs them in order.

And it is user code that may crash the interpreter (a segfaulting C extension, `os._exit`), so
none runs in the scheduler's process (issue 14): each runs in a spawned child
(`nbflow.runtime.callback_process`) that loads the DAG from its `DagSource`, killed with SIGKILL
after `[scheduler] callback_timeout`. How the child ended goes to the run's `callbacks.log`, and a
failure is one warning on the scheduler's log; it never changes a state or stops the scheduler.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nbflow.runtime.dag_source import DagSource
from nbflow.runtime.isolated import died_how
from nbflow.runtime.logs import callback_log_path
from nbflow.runtime.run_info import DagRunInfo
from nbflow.utils.masking import masker

log = logging.getLogger("nbflow.scheduler")
_DATES = ("logical_date", "data_interval_start", "data_interval_end", "start_date")
#: The child's exit code when it ran, and some callback raised (its traceback is in the log already).
RAISED_EXIT_CODE = 65


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """One callback attribute (`on_failure_callback`, ...) of a DAG or of one of its tasks, to run for a run.

    Only data: the child loads the DAG itself from `source`, so no function crosses processes.
    """

    source: DagSource
    dag_id: str
    run: DagRunInfo
    attribute: str  # "on_success_callback", "on_failure_callback" or "on_retry_callback"
    reason: str
    what: str  # for log lines, e.g. "DAG etl: failed callback"
    task_id: str | None = None  # None: the DAG's own callback
    map_index: int = -1
    try_number: int | None = None  # a task callback's attempt, for its alert e-mail

    def to_json(self) -> str:
        run = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self.run).items()}
        return json.dumps({**asdict(self), "source": self.source.to_dict(), "run": run}, default=str)

    @classmethod
    def from_json(cls, text: str) -> "CallbackRequest":
        data = json.loads(text)
        run = {k: (datetime.fromisoformat(v) if k in _DATES and v else v) for k, v in data["run"].items()}
        return cls(**{**data, "source": DagSource.from_dict(data["source"]), "run": DagRunInfo(**run)})


def as_functions(callback: Any) -> tuple[Callable[[dict[str, Any]], Any], ...]:
    """A task's or DAG's callback argument (one function, a list, or None) as a tuple."""
    if not callback:
        return ()
    return tuple(callback) if isinstance(callback, (list, tuple)) else (callback,)


@dataclass(frozen=True, slots=True)
class CallbackLimits:
    """Read once from config where the scheduler is built (STYLE §10)."""

    log_folder: Path
    timeout: float = 60.0  # [scheduler] callback_timeout: then the child gets SIGKILL


class CallbackRunner:
    """One daemon thread that runs handed-over callbacks in order, each in a child; `drain` waits (at stop)."""

    def __init__(self, limits: CallbackLimits) -> None:
        self.limits = limits
        self._queue: deque[CallbackRequest] = deque()
        self._changed = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None

    def submit(self, request: CallbackRequest) -> None:
        with self._changed:
            self._queue.append(request)
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nbflow-callbacks", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted callback has ended; False if some still run after `timeout`."""
        with self._changed:
            return self._changed.wait_for(lambda: self._busy == 0, timeout=timeout)

    def abandon(self) -> None:
        """Drop the callbacks not started and kill the one running (a stopping scheduler waited long enough)."""
        with self._changed:
            self._busy -= len(self._queue)
            self._queue.clear()
            child = self._child
        if child is not None:
            _kill_group(child)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue))
                request = self._queue.popleft()
            try:
                self._run_in_child(request)
            except Exception:  # noqa: BLE001 - the callback thread outlives any one callback
                log.exception("%s: could not run the callback's process", request.what)
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()

    def _run_in_child(self, request: CallbackRequest) -> None:
        path = callback_log_path(self.limits.log_folder, request.dag_id, request.run.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        _append(path, f"[{_now()}] INFO - [nbflow] {request.what} ({request.reason}): starting\n")
        # A session of its own: the SIGKILL of a timeout reaches whatever the callback started too.
        child = subprocess.Popen([sys.executable, "-m", "nbflow.runtime.callback_process", str(path)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        with self._changed:
            self._child = child
        try:
            try:
                output, _ = child.communicate(request.to_json().encode(), timeout=self.limits.timeout)
                verdict = _verdict(child.returncode)
            except subprocess.TimeoutExpired:
                _kill_group(child)
                output = _leftover_output(child)
                verdict = f"timed out after {self.limits.timeout:g} s ([scheduler] callback_timeout) and was killed"
        finally:
            with self._changed:
                self._child = None
        if output:  # what bypassed the child's masked sys.stdout: C code, subprocesses, a fatal error's dump
            _append(path, masker.redact(output.decode("utf-8", "replace")))
        if verdict is None:
            _append(path, f"[{_now()}] INFO - [nbflow] {request.what}: done\n")
            return
        _append(path, f"[{_now()}] ERROR - [nbflow] {request.what}: the callback's process {verdict}\n")
        log.warning("%s of run %s: the callback's process %s; see %s", request.what, request.run.run_id, verdict,
                    path)


def _verdict(code: int) -> str | None:
    """None when the child ran every callback cleanly, else how it ended ('exited with code 3', ...)."""
    if code == 0:
        return None
    if code == RAISED_EXIT_CODE:
        return "reported a failure (traceback above)"
    status = (-code) if code < 0 else (code << 8)  # Popen gives -N for signal N; died_how takes a wait status
    return died_how(status)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()


def _leftover_output(child: subprocess.Popen[bytes]) -> bytes:
    """What the killed child wrote; bounded, since a grandchild that left its group may hold the pipe."""
    try:
        return child.communicate(timeout=5)[0] or b""
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return b""


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]  # local time, as the attempt logs' lines
