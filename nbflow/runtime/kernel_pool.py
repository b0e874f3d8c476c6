"""The local executor worker's kernels: started ahead of need, handed to one forked attempt each.

The worker starts kernels as plain processes (notebook_kernels.KernelPool: no ZMQ, no thread, so
forking attempts stays safe) for every kernel its DAGs' notebook tasks will ask for. Before forking
a notebook attempt it takes one from the pool; the child attaches a client of its own to that kernel
(its connection file), and when the child ends the worker stops the kernel. No kernel runs two
notebooks, and the pool refills as soon as one is taken.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library: imported by the worker, so every forked attempt has it already.
from nbflow.operators.notebook_kernels import (
    HandedKernel,
    KernelPool,
    StartedKernel,
    KernelSpecInfo,
    find_kernel_spec,
    use_kernel_source,
)

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG


class WorkerKernels:
    """Kernel pool of one warm worker, keyed by the pids of the attempts that got a kernel."""

    def __init__(self, size: int, notebooks_folder: Path) -> None:
        self.size = size
        self.notebooks_folder = notebooks_folder
        self._pool: KernelPool | None = None
        self._by_attempt: dict[int, StartedKernel] = {}

    def prestart(self, dags: Iterable["DAG"]) -> None:
        """Start kernels for every kernel the DAGs' notebook tasks want, and pre-import what attempts
        need to run a notebook, so forked children have it (no thread or ZMQ context is created)."""
        names = {name for dag in dags for task in dag.tasks if (name := self._wanted(task))}
        if not names or not self.size:
            return
        from nbflow.operators.notebook_run import warm_up  # papermill, nbclient, jupyter_client, nbformat
        warm_up()
        for name in sorted(names):
            spec = self._spec(name)
            if spec is not None:
                self.pool.want(spec)

    @property
    def pool(self) -> KernelPool:
        if self._pool is None:
            self._pool = KernelPool(self.size)
        return self._pool

    def take_for(self, task: Any) -> StartedKernel | None:
        """A fresh kernel for this task's attempt, if it is a notebook task whose kernel is known."""
        if not self.size:
            return None
        name = self._wanted(task)
        spec = self._spec(name) if name else None
        return self.pool.take(spec) if spec is not None else None

    def hand_over(self, kernel: StartedKernel | None) -> None:
        """In the forked attempt: this kernel is the one its notebook task gets."""
        use_kernel_source(HandedKernel(kernel.kernel) if kernel is not None else NoKernels())

    def attempt_started(self, pid: int, kernel: StartedKernel | None) -> None:
        if kernel is not None:
            self._by_attempt[pid] = kernel

    def attempt_ended(self, pid: int) -> None:
        kernel = self._by_attempt.pop(pid, None)
        if kernel is not None:
            self.pool.retire(kernel)

    @property
    def busy(self) -> bool:
        """True while kernels are stopping, so the worker should come back to reap them."""
        return self._pool is not None and self._pool.stopping > 0

    def tick(self) -> None:
        if self._pool is not None:
            self._pool.tick()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def _wanted(self, task: Any) -> str | None:
        wanted = getattr(task, "kernel_wanted", None)
        if wanted is None:
            return None
        try:
            return wanted(self.notebooks_folder)
        except Exception:  # noqa: BLE001 - only a hint; the attempt finds the real kernel itself
            return None

    def _spec(self, name: str) -> KernelSpecInfo | None:
        try:
            return find_kernel_spec(name)
        except Exception as err:  # noqa: BLE001 - the attempt reports a missing kernel, naming its task
            print(f"nbflow worker: kernelspec {name!r}: {err}", file=sys.stderr)
            return None


class NoKernels:
    """In a forked attempt that got no kernel: start one itself, never from the worker's pool."""

    def take(self, spec: Any) -> None:
        return None

    def release(self, kernel: Any) -> None:
        pass
