"""Parsing DAG files in child processes: whatever a file does at import, the parent survives and learns why.

Files are imported in children forked from this (warm: nbflow already imported) process, at most
`processes` at once. Each child stays for the whole parse and is handed files one by one (a few ahead)
over a pipe, so a folder costs `processes` forks and no child idles while another has a slow file. It
announces each file before parsing it and reports its DAGs, serialized, over another pipe; it leaves
with `os._exit`. A child that dies takes only the file it announced last: the files it was handed but
had not started go to a new child.
The parent enforces the deadline from outside (SIGKILL at a file's import timeout plus one
second, so no signal mask or `except BaseException` in the file can stop it) and caps the child's
address space with RLIMIT_AS. A child that dies in any way (exit code, signal, timeout, an exception
while reporting) becomes an import error naming the file and how it failed; other files are unaffected.

Never fork a Jupyter kernel (many threads, ZMQ sockets; DESIGN.md): callers in a kernel use a spawned
process instead (`dag_processor.refresh_in_subprocess`).
"""
from __future__ import annotations

import json
import os
import re
import select
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nbflow.runtime.dag_source import DagSource

GRACE_SECONDS = 1.0  # beyond the import timeout, before the parent's SIGKILL
AHEAD = 2  # files handed to a child beyond the one it parses, so it never waits for the parent
# What DAG files import (and what parses them), imported once in the parent before it forks, so that
# no child pays for it again. nbflow's own code only (and croniter, which its schedules import lazily).
WARM_MODULES = ("nbflow.runtime.dagbag", "nbflow.runtime.serialized_dag", "nbflow.authoring.dag",
                "nbflow.authoring.edges", "nbflow.operators.python", "nbflow.operators.bash",
                "nbflow.operators.empty", "nbflow.decorators")


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """How a child may parse: the import timeout (s), how many at once, extra address space (MiB, 0: none)."""

    timeout: float = 30.0
    processes: int = 2
    max_memory_mb: int = 0


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """What parsing one source produced: its DAGs (ids, and JSON texts as the child encoded them) and
    import error texts. The texts go to the database as they are: decoding and encoding 500 DAGs again in
    the parent would cost a cold `dags list` ~0.1 s."""

    location: str
    dag_texts: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    source_hash: str = ""
    dag_ids: tuple[str, ...] = ()

    @property
    def dags(self) -> tuple[dict[str, Any], ...]:
        """The serialized DAGs, decoded."""
        return tuple(json.loads(text) for text in self.dag_texts)


@dataclass
class _Child:
    """One parsing process: the files handed to it and not yet reported (in order), the pipe it reports on
    (`fd`) and the pipe it is handed files on (`orders`); `current` is the file it announced last."""

    pid: int
    fd: int
    orders: int
    handed: deque[int] = field(default_factory=deque)  # indexes into the sources being parsed
    buffer: bytes = b""
    current: int | None = None
    texts: list[str] = field(default_factory=list)  # DAG texts of the current file, before its `R` line
    deadline: float = float("inf")
    killed_at_deadline: bool = False


# -- in the child ---------------------------------------------------------------------------------

def _limit_memory(extra_mb: int) -> None:
    """Cap the address space at what the child inherited plus `extra_mb` (RLIMIT_AS, where supported)."""
    if extra_mb <= 0:
        return
    try:
        import resource
        with open("/proc/self/statm") as file:
            pages = int(file.read().split()[0])
        current = pages * os.sysconf("SC_PAGE_SIZE")
        limit = current + extra_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        pass  # not Linux: no cap, the deadline still holds


def _parse_here(source: DagSource, timeout: float) -> dict[str, Any]:
    """Parse one source in this (child) process and return the JSON-ready result."""
    from nbflow.runtime.dagbag import ParsedFile, parse_cells, parse_file
    from nbflow.runtime.serialized_dag import serialize_dag

    parsed: ParsedFile
    if source.kind == "cells":
        parsed = parse_cells(source)
        source_hash = source.content_hash
    else:
        st = os.stat(source.location)
        parsed = parse_file(source.location, (st.st_mtime_ns, st.st_size), timeout=timeout)
        from nbflow.runtime.dag_source import content_hash
        source_hash = content_hash(parsed.source) if parsed.source else ""
    dag_ids, dag_texts = [], []
    errors = list(parsed.errors)
    for dag in parsed.dags:
        try:
            data = serialize_dag(dag, source_hash=source_hash)
            if source.kind == "cells":  # no file to read them from later: the cells travel with the DAG
                data["source"] = source.to_dict()
            # As SQLAlchemy's JSON type would write it; a DAG's data is a fresh tree of plain values, never circular.
            dag_texts.append(json.dumps(data, check_circular=False))
            dag_ids.append(data["dag_id"])
        except Exception as err:  # noqa: BLE001 - a DAG that cannot be serialized is that file's error
            errors.append(f"{source.location}: SerializationError: DAG {dag.dag_id!r} cannot be stored: "
                          f"{type(err).__name__}: {err}")
    return {"dag_ids": dag_ids, "dag_texts": dag_texts, "errors": errors, "source_hash": source_hash}


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _report(source: DagSource, timeout: float) -> dict[str, Any]:
    """The result for one source; an exception escaping the parse (MemoryError while serializing) is its error."""
    try:
        return _parse_here(source, timeout)
    except Exception as err:  # noqa: BLE001 - anything raised here is this file's fault
        last = (str(err).strip().splitlines() or [""])[-1]
        text = f"{type(err).__name__}: {last}" if last else type(err).__name__
        return {"dag_ids": [], "dag_texts": [], "source_hash": source.content_hash,
                "errors": [f"{source.location}: DagFileProcessError: parsing this file failed: {text}"]}


class _Orders:
    """The file indexes the parent hands this child, one a line, until it says `stop` (or is gone)."""

    NOT_YET = -1  # `next(wait=False)`: nothing handed yet

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: deque[bytes] = deque()
        self.buffer = b""

    def next(self, *, wait: bool) -> int | None:
        """The next file index; None once told to stop; NOT_YET when not waiting and none is there."""
        while not self.lines:
            if not wait and not select.select([self.fd], [], [], 0)[0]:
                return self.NOT_YET
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            *lines, self.buffer = (self.buffer + chunk).split(b"\n")
            self.lines.extend(lines)
        line = self.lines.popleft()
        return None if line == b"stop" else int(line)


def _child_main(sources: list[DagSource], orders_fd: int, write_fd: int, limits: ParseLimits) -> None:
    """Runs in the forked child: parse each source it is handed, announcing it first (`S <n>` line) so the
    parent knows which file to blame, then its DAGs (one `D <json>` line each, sent as encoded: escaping
    them again inside one line would cost both sides) and the rest of its result (`R <json>`). A result
    and the announcement of the next file already handed go in one write: one wake-up of the parent.
    Never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        import faulthandler
        faulthandler.disable()  # a file that crashes the child is reported once, by the parent
        _limit_memory(limits.max_memory_mb)
        orders = _Orders(orders_fd)
        number = orders.next(wait=True)
        reported = b""
        while number is not None:
            _write(write_fd, reported + f"S {number}\n".encode())  # before parsing: the parent knows whom to blame
            result = _report(sources[number], limits.timeout)
            texts = result.pop("dag_texts")
            reported = b"".join([*(b"D " + text.encode() + b"\n" for text in texts),
                                 b"R " + json.dumps(result).encode() + b"\n"])
            number = orders.next(wait=False)
            if number == _Orders.NOT_YET:
                _write(write_fd, reported)
                reported = b""
                number = orders.next(wait=True)
        _write(write_fd, reported)
    except BaseException:  # noqa: BLE001 - SystemExit, MemoryError...: the parent blames the current file
        code = 70
    finally:
        os._exit(code)


# -- in the parent --------------------------------------------------------------------------------

# How both import timeouts (here, and file_parsing.describe_timeout in the child) name the limit they hit.
_TIMEOUT_ERROR = re.compile(r"(?:timed out after|took longer than) (\S+) s (?:to import )?\(core\.dagbag_import_timeout\)")


def timed_out_under_another_limit(import_error: str | None, timeout: float) -> bool:
    """Whether a stored import error is an import timeout under a limit other than `timeout` (in seconds):
    such a file may import under the current limit, so it is parsed again though unchanged."""
    found = _TIMEOUT_ERROR.search(import_error or "")
    return found is not None and found.group(1) != f"{timeout:g}"


def _describe_death(location: str, how_killed: bool, status: int, limits: ParseLimits) -> str:
    if how_killed:
        how = (f"timed out after {limits.timeout:g} s (core.dagbag_import_timeout) and was killed; move slow "
               f"work into tasks, or raise the limit")
    elif os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        how = f"died of signal {name}"
        if number == signal.SIGKILL:
            how += " (killed from outside, perhaps for memory: dag_processor.max_memory_mb)"
    elif os.WIFEXITED(status):
        how = f"exited with exit code {os.WEXITSTATUS(status)} before it finished"
    else:
        how = f"ended with status {status}"
    return f"{location}: DagFileProcessError: the process parsing this file {how}"


def _start(sources: list[DagSource], limits: ParseLimits, running: Iterable[_Child]) -> _Child:
    read_fd, write_fd = os.pipe()
    orders_read, orders_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage cannot see past os._exit
        os.close(read_fd)
        os.close(orders_write)
        for other in running:  # another child's open orders pipe would keep that child from its end
            os.close(other.fd)
            os.close(other.orders)
        _child_main(sources, orders_read, write_fd, limits)
    os.close(write_fd)
    os.close(orders_read)
    os.set_blocking(read_fd, False)
    return _Child(pid, read_fd, orders_write)


def _hand(child: _Child, pending: list[int]) -> None:
    """Keep the child busy: hand it files up to AHEAD beyond its current one, or tell it to stop when
    nothing is left for it. A child that died meanwhile is seen when its pipe closes."""
    given: list[int] = []
    while pending and len(child.handed) + len(given) <= AHEAD:
        given.append(pending.pop())
    message = "".join(f"{number}\n" for number in given) if given else ("stop\n" if not child.handed else "")
    child.handed.extend(given)
    if message:
        try:
            os.write(child.orders, message.encode())
        except OSError:
            pass


def _take_lines(child: _Child, sources: list[DagSource], results: dict[str, ParseOutcome],
                limits: ParseLimits) -> bool:
    """Record what the child reported; True when it finished a file (so it can be handed another)."""
    *lines, child.buffer = child.buffer.split(b"\n")
    finished = False
    for line in lines:
        if line.startswith(b"D "):
            child.texts.append(line[2:].decode())
        elif line.startswith(b"S "):
            child.current, child.texts = int(line[2:]), []
            child.deadline = time.monotonic() + limits.timeout + GRACE_SECONDS if limits.timeout > 0 \
                else float("inf")
        elif line.startswith(b"R ") and child.current is not None:
            result = json.loads(line[2:])
            location = sources[child.current].location
            results[location] = ParseOutcome(location, tuple(child.texts), tuple(result["errors"]),
                                             result["source_hash"], tuple(result["dag_ids"]))
            if child.handed and child.handed[0] == child.current:
                child.handed.popleft()
            child.current, child.texts, child.deadline = None, [], float("inf")
            finished = True
    return finished


def _drain(child: _Child, sources: list[DagSource], results: dict[str, ParseOutcome],
           limits: ParseLimits) -> tuple[bool, bool]:
    """Read what the child wrote: (whether it finished a file, whether the pipe is closed: it exited)."""
    while True:
        try:
            chunk = os.read(child.fd, 1 << 16)
        except BlockingIOError:
            return _take_lines(child, sources, results, limits), False
        if not chunk:
            return _take_lines(child, sources, results, limits), True
        child.buffer += chunk


def _finish(child: _Child, sources: list[DagSource], results: dict[str, ParseOutcome], pending: list[int],
            limits: ParseLimits) -> None:
    """The child exited: blame the file it was parsing, if any, and queue the files it never started."""
    os.close(child.fd)
    os.close(child.orders)
    _, status = os.waitpid(child.pid, 0)
    clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and not child.killed_at_deadline
    blamed = child.current if child.current is not None else (None if clean or not child.handed
                                                              else child.handed[0])
    if blamed is not None:
        location = sources[blamed].location
        results[location] = ParseOutcome(location, errors=(_describe_death(location, child.killed_at_deadline,
                                                                           status, limits),))
    pending.extend(reversed([number for number in child.handed if number != blamed]))


def warm_up() -> None:
    """Import `WARM_MODULES` here, once, and put the plugins folder on sys.path, for the children forked
    from this process to inherit."""
    import importlib

    from nbflow.utils.plugins import plugins_folder_on_path
    for name in WARM_MODULES:
        importlib.import_module(name)
    plugins_folder_on_path()
    from nbflow.authoring.timetables import croniter_class
    croniter_class()  # most DAGs have a cron schedule: ~5 ms a child otherwise


def parse_in_children(sources: Iterable[DagSource], limits: ParseLimits, *,
                      until: "Callable[[dict[str, ParseOutcome]], bool] | None" = None) -> dict[str, ParseOutcome]:
    """Parse every source in child processes (`limits.processes` at once); outcomes by location.

    `until`, asked after each outcome, may end the parse early: the children still at work are killed,
    and the sources they had not reported are absent from the outcomes."""
    sources = list(sources)
    if sources:
        warm_up()
    pending = list(reversed(range(len(sources))))  # popped from the end: in the given order
    running: dict[int, _Child] = {}  # by report pipe fd
    results: dict[str, ParseOutcome] = {}
    width = max(1, limits.processes)
    try:
        while pending or running:
            while pending and len(running) < width:
                child = _start(sources, limits, running.values())
                running[child.fd] = child
                _hand(child, pending)
            now = time.monotonic()
            for child in running.values():
                if now >= child.deadline and not child.killed_at_deadline:
                    child.killed_at_deadline = True
                    os.kill(child.pid, signal.SIGKILL)
            wait = max(0.0, min(child.deadline for child in running.values()) - now)
            ready, _, _ = select.select(list(running), [], [], min(wait, 1.0))
            for fd in ready:
                child = running[fd]
                finished, closed = _drain(child, sources, results, limits)
                if closed:
                    del running[fd]
                    _finish(child, sources, results, pending, limits)
                elif finished:
                    _hand(child, pending)
                if until is not None and (finished or closed) and until(results):
                    return results  # the children still running are killed below
    finally:
        for child in running.values():  # interrupted, or stopped early by `until`: leave no child behind
            try:
                os.kill(child.pid, signal.SIGKILL)
                os.close(child.fd)
                os.close(child.orders)
                os.waitpid(child.pid, 0)
            except OSError:
                pass
    return results


def run_in_child(work: "Callable[[], Any]", timeout: float) -> tuple[Any, str | None]:
    """Run `work()` in a forked child with a hard deadline (SIGKILL); its JSON result, or why there is none.

    For the scheduler's few needs of user objects (expanding a mapped task): the user code runs in the
    child, and whatever it does (exit, crash, hang) comes back as an error text, never as the parent's end.
    """
    from nbflow.runtime.dag_processor import in_kernel
    if in_kernel():  # a kernel is never forked (DESIGN.md); it holds these DAG objects already anyway
        try:
            return work(), None
        except Exception as err:  # noqa: BLE001 - reported like a child's error
            return None, f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        code = 0
        try:
            import faulthandler
            faulthandler.disable()
            try:
                payload = {"ok": work()}
            except Exception as err:  # noqa: BLE001 - reported to the parent
                payload = {"error": f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"}
            _write(write_fd, json.dumps(payload).encode())
        except BaseException:  # noqa: BLE001
            code = 70
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    killed = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 and not killed:
                os.kill(pid, signal.SIGKILL)
                killed = True
            ready, _, _ = select.select([read_fd], [], [], max(left, 0.05) if not killed else 1.0)
            if ready:
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    if not killed and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and chunks:
        result = json.loads(b"".join(chunks))
        return result.get("ok"), result.get("error")
    how = _describe_death("the child", killed, status, ParseLimits(timeout=timeout))
    return None, how.split("DagFileProcessError: ", 1)[-1]


__all__ = ["ParseLimits", "ParseOutcome", "parse_in_children", "run_in_child", "timed_out_under_another_limit"]
