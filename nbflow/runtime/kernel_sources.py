"""Where notebook tasks in this process get kernels: the runtime installs the source, tasks only ask.

A process that runs tasks itself (`dags test`, `tasks test`, `tasks run`) keeps its own
pool, built on first use; an attempt forked by the local executor's worker is handed the one kernel
the worker started for it (`HandedKernel`), or none. The notebook operator reaches whichever is
installed through `nbflow.operators.notebook_kernels.kernel_source()`, which this module provides
when it is imported (by the task context, so before any task runs): operators never import the runtime.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from nbflow.operators.notebook_kernels import (
    KernelSource,
    KernelSpecInfo,
    LaunchedKernel,
    StartedKernel,
    provide_kernel_sources,
)
from nbflow.runtime.kernel_pool import KernelPool


class PoolSource:
    """A process's own pool: used by in-process runs, `tasks test` and `tasks run`."""

    def __init__(self, size: int) -> None:
        self.pool = KernelPool(size)
        self._lock = threading.Lock()  # in-process runs may come from several threads
        self._out: dict[int, StartedKernel] = {}

    def take(self, spec: KernelSpecInfo) -> LaunchedKernel | None:
        with self._lock:
            self.pool.tick()
            process = self.pool.take(spec)
            if process is None:
                return None
            self._out[process.pid] = process
            return process.kernel

    def release(self, kernel: LaunchedKernel) -> None:
        with self._lock:
            process = self._out.pop(kernel.pid, None)
            if process is not None:
                self.pool.retire(process)
            self.pool.tick()

    def close(self) -> None:
        with self._lock:
            self.pool.close()


class HandedKernel:
    """In an attempt forked by the local executor's worker: the one kernel the worker started for it.

    The worker owns the process and stops it when this attempt's process ends; this side only uses it.
    """

    def __init__(self, kernel: LaunchedKernel) -> None:
        self.kernel: LaunchedKernel | None = kernel

    def take(self, spec: KernelSpecInfo) -> LaunchedKernel | None:
        kernel, self.kernel = self.kernel, None
        if kernel is None or kernel.kernel_name != spec.name:
            return None
        return kernel

    def release(self, kernel: LaunchedKernel) -> None:
        """Nothing to do: the worker stops the kernel when this attempt's process ends."""


class NoKernels:
    """In a forked attempt that got no kernel: start one itself, never from the worker's pool."""

    def take(self, spec: Any) -> None:
        return None

    def release(self, kernel: Any) -> None:
        pass


_source: KernelSource | None = None
_source_pid: int | None = None


def use_kernel_source(source: KernelSource | None) -> None:
    """Install where notebook tasks in this process get kernels (the worker's forked attempts do)."""
    global _source, _source_pid
    _source, _source_pid = source, os.getpid()


def process_kernel_source(pool_size: int) -> KernelSource:
    """The installed source, else this process's own pool, built on first use and closed at exit."""
    global _source, _source_pid
    if _source is None or _source_pid != os.getpid():  # never use a pool inherited through fork
        pool = PoolSource(pool_size)
        import atexit
        atexit.register(pool.close)
        _source, _source_pid = pool, os.getpid()
    return _source


provide_kernel_sources(process_kernel_source)
