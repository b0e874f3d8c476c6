"""LocalExecutor: a warm worker process runs each attempt in a process forked from its warm state.

The worker (`python -m nbflow.runtime.worker`) is spawned, never forked from the scheduler, so the
scheduler may live in a Jupyter kernel's thread; it imports nbflow and parses the DAG files once,
claims and records attempts, and has its fork server fork one process per attempt: a crash, leak
or `os._exit` in a task ends only that process. Messages are JSON lines over the worker's stdin
and stdout.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nbflow.exceptions import NbflowException
from nbflow.runtime.executors.base import BaseExecutor, ExecutorSettings, RunWorkload, executors
from nbflow.runtime.workload import ExecutorEvent, Workload
from nbflow.store.keys import TIKey

if TYPE_CHECKING:
    from nbflow.configuration import Config


@dataclass(frozen=True, slots=True)
class LocalExecutorSettings(ExecutorSettings):
    """`[core] parallelism` and `dags_folder` (what the worker parses), plus `[local_executor]`."""

    dags_folder: Path
    worker_start_timeout_sec: float = 120.0


@executors.register("local")
class LocalExecutor(BaseExecutor):
    """Parallel attempts in processes forked from one warm worker."""

    name = "local"
    queue_depth_factor = 4  # a backlog in the worker while the scheduler lets events gather
    followups = True  # the worker starts the downstream tasks an ending attempt made ready (the mini-scheduler)
    settings: LocalExecutorSettings

    @classmethod
    def settings_from_config(cls, config: "Config") -> LocalExecutorSettings:
        return LocalExecutorSettings(
            parallelism=config.getint("core", "parallelism"),
            dags_folder=config.dags_folder,
            worker_start_timeout_sec=config.getfloat("local_executor", "worker_start_timeout_sec"),
        )

    def __init__(self, settings: LocalExecutorSettings, *, run_workload: RunWorkload | None = None) -> None:
        super().__init__(settings, run_workload=run_workload)
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._ready = threading.Event()
        self._restarts: list[float] = []

    def start(self) -> None:
        cmd = [sys.executable, "-m", "nbflow.runtime.worker", "--dags-folder", str(self.settings.dags_folder),
               "--parallelism", str(self.parallelism), "--executor", self.name]
        if not self.followups:
            cmd.append("--no-followups")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                      env=dict(os.environ), start_new_session=True)
        self._reader = threading.Thread(target=self._read_events, daemon=True, name="local-executor-reader")
        self._reader.start()
        timeout = self.settings.worker_start_timeout_sec
        if not self._ready.wait(timeout):
            raise NbflowException(f"the {self.name} executor's worker did not start within {timeout:g} s "
                                  f"([local_executor] worker_start_timeout_sec); see its stderr")

    def queue(self, workload: Workload) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            proc = self._restart(proc)
        self._track(workload)
        with self._write_lock:
            assert proc.stdin is not None
            proc.stdin.write(workload.to_json() + "\n")
            proc.stdin.flush()

    def _restart(self, dead: "subprocess.Popen[str] | None") -> "subprocess.Popen[str]":
        """A new worker for one that died (killed, out of memory); its attempts were reported lost."""
        if dead is None:
            raise NbflowException(f"the {self.name} executor's worker is not running (start() was not called)")
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < 60] + [now]
        if len(self._restarts) > 5:
            raise NbflowException(f"the {self.name} executor's worker died 6 times within a minute; "
                                  f"see its stderr above")
        print(f"nbflow: the {self.name} executor's worker exited with code {dead.returncode}; starting another",
              file=sys.stderr)
        if self._reader is not None:
            self._reader.join(timeout=10)  # it reports the dead worker's attempts first
        self._ready.clear()
        self.start()
        assert self._proc is not None
        return self._proc

    def _read_events(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("ready"):
                self._ready.set()
                continue
            if "started" in message:  # queued by an ending attempt (the mini-scheduler), run by the worker
                self._track(Workload(**message["started"]))
                continue
            key = TIKey(**message["key"])
            self._report(ExecutorEvent(key, message["try_number"], message["exit_code"], message.get("message", ""),
                                       noted=True))
        # The worker is gone: every attempt it still had counts as dead.
        with self._lock:
            lost = list(self._running.values())
        for workload in lost:
            self._report(ExecutorEvent(workload.key, workload.try_number, -1,
                                       f"the {self.name} executor's worker exited"))
        self._ready.set()

    def end(self, *, wait: bool = True) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the worker finishes its children, then exits
        except OSError:
            pass
        try:
            proc.wait(timeout=None if wait else 5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._proc = None
