"""One attempt in a forked child: a task that segfaults or calls `os._exit` ends its child, not the caller.

Used by `%dag test` (in its own process, spawned from the kernel, which is never forked): each task
runs in a child forked from that single-threaded runner; what it pushed comes back with its outcome.
"""
from __future__ import annotations

import os
import pickle
import signal
from typing import TextIO

from nbflow.runtime.logs import attempt_log_path
from nbflow.runtime.run_info import AttemptOutcome, TIKey
from nbflow.runtime.task_runner import AttemptRequest, run_attempt
from nbflow.runtime.xcom import XComStore
from nbflow.utils.state import TaskInstanceState


class _Recording:
    """The parent's XComs as the child sees them, plus a list of what the child pushes."""

    def __init__(self, inner: XComStore) -> None:
        self.inner = inner
        self.pushed: list[tuple[TIKey, str, str]] = []

    def set(self, key: TIKey, name: str, value_json: str) -> None:
        self.pushed.append((key, name, value_json))
        self.inner.set(key, name, value_json)

    def get(self, key: TIKey, name: str) -> str | None:
        return self.inner.get(key, name)

    def get_latest(self, key: TIKey, name: str) -> str | None:
        return self.inner.get_latest(key, name)

    def get_mapped(self, dag_id: str, run_id: str, task_id: str, name: str) -> list[str | None]:
        return self.inner.get_mapped(dag_id, run_id, task_id, name)

    def clear(self, key: TIKey) -> None:
        self.inner.clear(key)


def run_attempt_in_child(request: AttemptRequest, xcoms: XComStore, *, echo: TextIO | None = None) -> AttemptOutcome:
    """`run_attempt` in a forked child; a child that dies without an outcome fails the attempt, saying how."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send the outcome and the pushes, leave without cleanup
        code = 0
        try:
            os.close(read_fd)
            recording = _Recording(xcoms)
            outcome = run_attempt(request, recording, echo=echo)
            payload = pickle.dumps((outcome, recording.pushed))
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
        except BaseException:  # noqa: BLE001 - nothing may escape a forked child
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if data:
        outcome, pushed = pickle.loads(data)  # noqa: S301 - from our own child
        for key, name, value in pushed:
            xcoms.set(key, name, value)
        return outcome
    reason = died_how(status)
    path = attempt_log_path(request.log_folder, request.run.dag_id, request.run.run_id, request.task.task_id,
                            request.try_number, request.map_index)
    try:
        with path.open("a", encoding="utf-8") as log:
            log.write(f"[nbflow] the attempt's process {reason} before reporting a result\n")
    except OSError:
        pass
    return AttemptOutcome(state=TaskInstanceState.FAILED, try_number=request.try_number, duration=0.0,
                          error=f"the task's process {reason}", log_path=str(path))


def died_how(status: int) -> str:
    """'was killed by signal 11 (SIGSEGV)' or 'exited with code 3', from a wait status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "?"
        return f"was killed by signal {number} ({name})"
    return f"exited with code {os.WEXITSTATUS(status) if os.WIFEXITED(status) else status}"


__all__ = ["died_how", "run_attempt_in_child"]
