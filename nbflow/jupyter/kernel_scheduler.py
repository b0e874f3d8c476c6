"""`%nbflow scheduler start`: the ordinary scheduler loop on a background thread of the kernel.

It schedules the dags folder and the DAGs this kernel's magics defined, on the same metadata database
as `nbflow scheduler`. Tasks never run in the kernel: the local executor's worker is a separate process
(spawned, never a fork of the kernel), which forks one child per attempt; kernel DAGs reach it as the
cell text each workload carries. Another scheduler on the same database is fine: a task instance is
claimed in the database, so it runs once.
"""
from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from nbflow.configuration import Config
from nbflow.runtime import api
from nbflow.runtime.dag_source import DagSource

if TYPE_CHECKING:
    from nbflow.runtime.scheduler import Scheduler


class _News(logging.Handler):
    """What the scheduler says (finished runs, broken files), kept for `status` instead of printed into
    whichever cell happens to be running."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=20)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{time.strftime('%H:%M:%S')} {record.getMessage()}")


class KernelScheduler:
    """One scheduler thread per kernel; `start`, `offer` (a DAG's new cells), `stop`, `status`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.scheduler: "Scheduler | None" = None
        self.thread: threading.Thread | None = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.news = _News()
        self._atexit = False

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, sources: list[DagSource]) -> None:
        if self.running:
            return
        env = api.Environment.from_config(self.config)
        # The local executor: the sequential one would hold this thread for the length of every attempt.
        self.scheduler = api.make_scheduler(env, executor="local")
        for source in sources:  # cells go to the DAG processor as sources; the kernel parses no DAG file
            self.scheduler.dagbag.add_source(source)
        logger = logging.getLogger("nbflow.scheduler")
        if self.news not in logger.handlers:
            logger.addHandler(self.news)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        self.error = None
        self.started_at = time.time()
        self.thread = threading.Thread(target=self._run, name="nbflow-scheduler", daemon=True)
        self.thread.start()
        if not self._atexit:
            atexit.register(self.stop)  # a kernel shut down ends its scheduler and worker cleanly
            self._atexit = True

    def _run(self) -> None:
        assert self.scheduler is not None
        try:
            self.scheduler.run()
        except Exception as err:  # noqa: BLE001 - reported by `status`, never into a random cell
            self.error = f"{type(err).__name__}: {err}"

    def offer(self, source: DagSource) -> None:
        """A kernel DAG was (re)defined: schedule its new cells from the next turn on."""
        if self.scheduler is None or not self.running:
            return
        self.scheduler.dagbag.add_source(source)
        self.scheduler.request_parse()

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the loop; running attempts finish and the worker exits. True when everything ended."""
        if self.scheduler is None or self.thread is None:
            return True
        self.scheduler.stop()
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def status(self) -> dict[str, Any]:
        scheduler = self.scheduler
        return {
            "running": self.running,
            "since": time.strftime("%H:%M:%S", time.localtime(self.started_at)) if self.started_at else None,
            "executor": scheduler.executor.name if scheduler else None,
            "running_tasks": scheduler.executor.running_count if scheduler and self.running else 0,
            "dags": len(scheduler.dagbag.dags) if scheduler else 0,
            "error": self.error,
            "news": list(self.news.lines),
        }


__all__ = ["KernelScheduler"]
