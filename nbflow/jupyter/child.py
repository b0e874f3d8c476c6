"""Run `nbflow.runtime.source_runner` in a child process and relay what it prints under the cell.

The kernel waits for it as for any long cell: Interrupt (I, I) stops the child, and a task that
crashes its process ends that process, never the kernel.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbflow.runtime.source_runner import EVENT_MARK, RESULT_MARK


@dataclass(frozen=True, slots=True)
class ChildResult:
    exit_code: int
    result: dict[str, Any] | None  # what the child reported with RESULT_MARK, if anything
    lines: tuple[str, ...]  # everything else it printed


def run_child(request: dict[str, Any], *, show: Callable[[str], None] | None = None,
              on_event: Callable[[dict[str, Any]], None] | None = None) -> ChildResult:
    """Start the runner with `request`, hand each line it prints to `show` and each event to `on_event`
    as they come."""
    show = show or (lambda line: print(line, flush=True))
    proc = subprocess.Popen([sys.executable, "-m", "nbflow.runtime.source_runner"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    result: dict[str, Any] | None = None
    lines: list[str] = []
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(request))
        proc.stdin.close()
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if line.startswith(RESULT_MARK):
                result = json.loads(line[len(RESULT_MARK):])
                continue
            if line.startswith(EVENT_MARK):
                if on_event is not None:
                    on_event(json.loads(line[len(EVENT_MARK):]))
                continue
            lines.append(line)
            show(line)
        code = proc.wait()
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()
        raise
    return ChildResult(code, result, tuple(lines))


__all__ = ["ChildResult", "run_child"]
