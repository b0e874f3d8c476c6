"""What an attempt writes to descriptors 1 and 2, copied into its log while it runs.

The descriptors point at an anonymous file (logs.py); a thread copies the file's new whole lines into the
attempt's masked log every PUMP_INTERVAL s, and the attempt copies what is left (an unfinished last line)
when it ends. Whole lines only, so a secret written in two pieces is masked whole.

One thread per process, started by its first attempt and kept: a process that runs many attempts (the
sequential executor, `dags test`) starts it once; a forked attempt of the local executor, once for itself.
A file read by a thread rather than a pipe: a writer never blocks on a full pipe. What a killed attempt
had not copied yet (at most one interval's lines and an unfinished one) is lost rather than copied by the
process that notes its death: that process does not know the secrets the attempt registered (a value a
custom backend returned) and could write them bare.
"""
from __future__ import annotations

import contextlib
import os
import _thread
import threading
import time
from collections.abc import Iterator
from typing import Protocol

#: How often the thread looks for new lines: a live log tail sees them within this delay.
PUMP_INTERVAL = 0.2
#: Text without a newline this long is copied anyway (a progress bar drawn with \r, binary output).
MAX_PENDING = 1 << 20


class TextSink(Protocol):
    def write(self, text: str) -> int: ...


class FdCopy:
    """Copies one anonymous file into one text stream (the masked tee), from where it last stopped."""

    def __init__(self, source: int, out: TextSink) -> None:
        self._source, self._out = source, out
        self._copied = 0
        self._closed = False
        self._lock = threading.Lock()  # the pump thread and the attempt's own final copy

    def copy(self, *, whole_lines: bool) -> None:
        with self._lock:
            if not self._closed:
                self._copy(whole_lines)

    def finish(self) -> None:
        """Copy what is left, an unfinished last line included (given its newline); copy nothing after."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._copy(whole_lines=False)

    def _copy(self, whole_lines: bool) -> None:
        size = os.fstat(self._source).st_size
        if size <= self._copied:
            return
        data = os.pread(self._source, size - self._copied, self._copied)
        if whole_lines and len(data) < MAX_PENDING:
            data = data[:data.rfind(b"\n") + 1]  # up to the last newline; the rest waits for its end
            if not data:
                return
        self._copied += len(data)
        text = data.decode("utf-8", "replace")
        self._out.write(text if whole_lines or text.endswith("\n") else text + "\n")


class _Pump:
    """The process's copying thread: every PUMP_INTERVAL s, each open FdCopy's new whole lines."""

    def __init__(self) -> None:
        self._copies: set[FdCopy] = set()
        self._lock = threading.Lock()
        self._busy = threading.Event()  # set while some attempt is open: an idle process's thread sleeps
        self._started = False

    def add(self, copy: FdCopy) -> None:
        with self._lock:
            self._copies.add(copy)
            self._busy.set()
            if not self._started:
                # _thread, not threading.Thread: in a freshly forked attempt, Thread.start's hand-shake with
                # the new thread cost ~0.35 ms, the bare start ~0.08 ms. Never joined: it ends with the process.
                _thread.start_new_thread(self._run, ())
                self._started = True

    def remove(self, copy: FdCopy) -> None:
        with self._lock:
            self._copies.discard(copy)
            if not self._copies:
                self._busy.clear()

    def _run(self) -> None:
        while True:
            self._busy.wait()
            time.sleep(PUMP_INTERVAL)
            with self._lock:
                copies = list(self._copies)
            for copy in copies:
                with contextlib.suppress(OSError):  # its file was closed after `finish`: nothing to copy
                    copy.copy(whole_lines=True)


_pump = _Pump()


def _new_pump_after_fork() -> None:
    # A forked child (one attempt of the local executor) has no copy of the parent's thread, and a lock
    # the parent's thread held at fork time would stay held: it starts its own on first use.
    global _pump
    _pump = _Pump()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_pump_after_fork)


@contextlib.contextmanager
def copied_while_open(source: int, out: TextSink) -> Iterator[None]:
    """Copy `source`'s whole lines into `out` while the block runs, and the rest when it ends."""
    copy = FdCopy(source, out)
    _pump.add(copy)
    try:
        yield
    finally:
        _pump.remove(copy)
        copy.finish()
