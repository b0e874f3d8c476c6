"""Parsing DAG files in child processes: whatever a file does at import, the parent survives and learns why.

Each file is imported in a child forked from this (warm: nbflow already imported) process, at most
`processes` at once. The child reports its DAGs, serialized, as JSON over a pipe and leaves with
`os._exit`. The parent enforces the deadline from outside (SIGKILL at the import timeout plus one
second, so no signal mask or `except BaseException` in the file can stop it) and caps the child's
address space with RLIMIT_AS. A child that dies in any way (exit code, signal, timeout, an exception
while reporting) becomes an import error naming the file and how it failed; other files are unaffected.

Never fork a Jupyter kernel (many threads, ZMQ sockets; DESIGN.md): callers in a kernel use a spawned
process instead (`dag_processor.refresh_in_subprocess`).
"""
from __future__ import annotations

import json
import os
import select
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nbflow.runtime.dag_source import DagSource

GRACE_SECONDS = 1.0  # beyond the import timeout, before the parent's SIGKILL


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """How a child may parse: the import timeout (s), how many at once, extra address space (MiB, 0: none)."""

    timeout: float = 30.0
    processes: int = 2
    max_memory_mb: int = 0


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """What parsing one source produced: serialized DAGs (JSON dicts) and import error texts."""

    location: str
    dags: tuple[dict[str, Any], ...] = ()
    errors: tuple[str, ...] = ()
    source_hash: str = ""


@dataclass
class _Child:
    source: DagSource
    pid: int
    fd: int
    deadline: float
    chunks: list[bytes] = field(default_factory=list)
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
    dags = []
    errors = list(parsed.errors)
    for dag in parsed.dags:
        try:
            dags.append(serialize_dag(dag, source_hash=source_hash))
        except Exception as err:  # noqa: BLE001 - a DAG that cannot be serialized is that file's error
            errors.append(f"{source.location}: SerializationError: DAG {dag.dag_id!r} cannot be stored: "
                          f"{type(err).__name__}: {err}")
    return {"dags": dags, "errors": errors, "source_hash": source_hash}


def _child_main(source: DagSource, write_fd: int, limits: ParseLimits) -> None:
    """Runs in the forked child; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        import faulthandler
        faulthandler.disable()  # a file that crashes the child is reported once, by the parent
        _limit_memory(limits.max_memory_mb)
        result = _parse_here(source, limits.timeout)
        data = json.dumps(result).encode()
        view = memoryview(data)
        while view:
            written = os.write(write_fd, view)
            view = view[written:]
    except BaseException as err:  # noqa: BLE001 - the parent reads the reason from stderr-free JSON
        try:
            last = (str(err).strip().splitlines() or [""])[-1]
            text = f"{type(err).__name__}: {last}" if last else type(err).__name__
            os.write(write_fd, json.dumps({"crash": text}).encode())
        except BaseException:  # noqa: BLE001
            code = 70
    finally:
        os._exit(code)


# -- in the parent --------------------------------------------------------------------------------

def _describe_death(child: _Child, status: int, limits: ParseLimits) -> str:
    where = child.source.location
    if child.killed_at_deadline:
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
    return f"{where}: DagFileProcessError: the process parsing this file {how}"


def _outcome(child: _Child, status: int, limits: ParseLimits) -> ParseOutcome:
    where = child.source.location
    raw = b"".join(child.chunks)
    exited_cleanly = not child.killed_at_deadline and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    if raw and exited_cleanly:
        try:
            result = json.loads(raw)
        except ValueError:
            result = None
        if isinstance(result, dict) and "crash" in result:
            return ParseOutcome(where, errors=(f"{where}: DagFileProcessError: parsing this file failed: "
                                               f"{result['crash']}",))
        if isinstance(result, dict):
            return ParseOutcome(where, tuple(result["dags"]), tuple(result["errors"]), result["source_hash"])
    return ParseOutcome(where, errors=(_describe_death(child, status, limits),))


def _start(source: DagSource, limits: ParseLimits) -> _Child:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage cannot see past os._exit
        os.close(read_fd)
        _child_main(source, write_fd, limits)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    deadline = time.monotonic() + limits.timeout + GRACE_SECONDS if limits.timeout > 0 else float("inf")
    return _Child(source, pid, read_fd, deadline)


def _drain(child: _Child) -> bool:
    """Read what the child wrote; True once the pipe is closed (the child exited or closed it)."""
    while True:
        try:
            chunk = os.read(child.fd, 1 << 16)
        except BlockingIOError:
            return False
        if not chunk:
            return True
        child.chunks.append(chunk)


def _finish(child: _Child, limits: ParseLimits) -> ParseOutcome:
    os.close(child.fd)
    _, status = os.waitpid(child.pid, 0)
    return _outcome(child, status, limits)


def parse_in_children(sources: Iterable[DagSource], limits: ParseLimits) -> dict[str, ParseOutcome]:
    """Parse every source, each in its own child, and return the outcomes by location."""
    pending = list(sources)
    pending.reverse()
    running: dict[int, _Child] = {}  # by pipe fd
    results: dict[str, ParseOutcome] = {}
    width = max(1, limits.processes)
    try:
        while pending or running:
            while pending and len(running) < width:
                child = _start(pending.pop(), limits)
                running[child.fd] = child
            now = time.monotonic()
            for child in list(running.values()):
                if now >= child.deadline and not child.killed_at_deadline:
                    child.killed_at_deadline = True
                    os.kill(child.pid, signal.SIGKILL)
            wait = max(0.0, min(child.deadline for child in running.values()) - now)
            ready, _, _ = select.select(list(running), [], [], min(wait, 1.0))
            for fd in ready:
                child = running[fd]
                if _drain(child):
                    del running[fd]
                    results[child.source.location] = _finish(child, limits)
    finally:
        for child in running.values():  # interrupted: leave no child behind
            try:
                os.kill(child.pid, signal.SIGKILL)
                os.close(child.fd)
                os.waitpid(child.pid, 0)
            except OSError:
                pass
    return results


__all__ = ["ParseLimits", "ParseOutcome", "parse_in_children"]
