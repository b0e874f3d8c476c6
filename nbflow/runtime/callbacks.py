"""DAG callbacks and the callbacks of attempts that died, run by the scheduler off its loop.

A callback is user code (a Slack message, an e-mail, a slow API): run inside the scheduler's turn,
and worse inside the write transaction that decided it, one slow callback would hold every worker
back from recording results. So the scheduler collects them while deciding and hands them over
once its transaction has committed; one thread runs them in order.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("nbflow.scheduler")


@dataclass(frozen=True, slots=True)
class Callback:
    functions: tuple[Callable[[dict[str, Any]], Any], ...]
    context: dict[str, Any]
    what: str  # for the log line when one raises, e.g. "DAG etl: success callback"


def as_functions(callback: Any) -> tuple[Callable[[dict[str, Any]], Any], ...]:
    """A task's or DAG's callback argument (one function, a list, or None) as a tuple."""
    if not callback:
        return ()
    return tuple(callback) if isinstance(callback, (list, tuple)) else (callback,)


class CallbackRunner:
    """One daemon thread that runs handed-over callbacks in order; `drain` waits for them (at stop)."""

    def __init__(self) -> None:
        self._queue: deque[Callback] = deque()
        self._changed = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None

    def submit(self, callback: Callback) -> None:
        if not callback.functions:
            return
        with self._changed:
            self._queue.append(callback)
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nbflow-callbacks", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted callback has run; False if some still run after `timeout`."""
        with self._changed:
            return self._changed.wait_for(lambda: self._busy == 0, timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue))
                callback = self._queue.popleft()
            try:
                for fn in callback.functions:
                    try:
                        fn(callback.context)
                    except Exception:  # noqa: BLE001 - a callback never changes a state
                        log.exception("%s failed", callback.what)
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()
