"""Pools of fresh kernels for notebook tasks: the runtime owns them and decides who gets one.

`KernelPool` keeps kernels started ahead of need as plain processes (no ZMQ, no thread, so forking
attempts stays safe). The local executor's worker keeps one (`WorkerKernels`) for every kernel its
DAGs' notebook tasks will ask for: before forking a notebook attempt it takes one from the pool; the
child attaches a client of its own to that kernel (its connection file), and when the child ends the
worker stops the kernel. No kernel runs two notebooks, and the pool refills as soon as one is taken.
How a task in some process reaches a pool is `nbflow.runtime.kernel_sources`.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library: imported by the worker, so every forked attempt has it already.
from nbflow.operators.notebook_kernels import (
    KernelProcess,
    KernelSpecInfo,
    StartedKernel,
    find_kernel_spec,
    fork_kernel,
    kernel_folder,
    launch_kernel,
    remove_kernel_files,
)

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.operators.notebook_template import KernelTemplate


class KernelPool:
    """Fresh kernels started ahead of need, `size` per kernel name; each is handed out once, never back.

    Starting a kernel only launches its process (milliseconds); it becomes ready in the background
    while the pool's owner does other work, so no thread is needed. Python kernels are forked from a
    kernel template that has ipykernel imported (`use_template`), others started from their argv.
    Not thread-safe by itself.
    """

    def __init__(self, size: int, folder: Path | None = None, *, use_template: bool = True) -> None:
        self.size = max(int(size), 0)
        self._folder = folder
        self._idle: dict[str, deque[StartedKernel]] = {}
        self._specs: dict[str, KernelSpecInfo] = {}
        self._stopping: list[StartedKernel] = []
        self._failed: set[str] = set()  # names whose pooled kernel died unused: refill only on demand
        self._use_template = use_template
        self._template: KernelTemplate | None = None

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = kernel_folder()
        return self._folder

    def want(self, spec: KernelSpecInfo) -> None:
        """Keep `size` kernels of this spec started from now on."""
        if self.size and spec.poolable:
            self._specs[spec.name] = spec
            self._idle.setdefault(spec.name, deque())
            self.refill()

    def take(self, spec: KernelSpecInfo) -> StartedKernel | None:
        """A kernel nobody has used, the longest-started first; None when the pool does not keep this kind."""
        if not self.size or not spec.poolable:
            return None
        self._failed.discard(spec.name)
        self.want(spec)
        queue = self._idle[spec.name]
        while queue:
            kernel = queue.popleft()
            if kernel.alive():
                break
            self._stopping.append(kernel)
        else:
            kernel = self._launch(spec)
        self.refill()
        return kernel

    def retire(self, kernel: StartedKernel) -> None:
        """Stop a kernel that was handed out (its run is over)."""
        kernel.stop()
        self._stopping.append(kernel)

    def refill(self) -> None:
        for name, queue in self._idle.items():
            for kernel in [k for k in queue if not k.alive()]:  # died before use (bad spec, killed)
                queue.remove(kernel)
                self._stopping.append(kernel)
                self._failed.add(name)
            while name not in self._failed and len(queue) < self.size:
                queue.append(self._launch(self._specs[name]))

    def _launch(self, spec: KernelSpecInfo) -> StartedKernel:
        if self._use_template:
            from nbflow.operators.notebook_template import KernelTemplate
            try:
                if self._template is None or not self._template.alive():
                    self._template = KernelTemplate()
                forked = fork_kernel(spec, self.folder, self._template)
                if forked is not None:
                    return forked
            except OSError as err:  # the template failed: start kernels as their own processes from now on
                print(f"nbflow: kernel template unavailable ({err}); starting kernels one by one", file=sys.stderr)
                self._use_template = False
        return launch_kernel(spec, self.folder)

    def tick(self) -> None:
        """Reap stopped kernels and replace any pooled kernel that died; call now and then."""
        self._stopping = [k for k in self._stopping if not k.reap()]
        self.refill()

    @property
    def stopping(self) -> int:
        return len(self._stopping)

    def idle_count(self, name: str) -> int:
        return len(self._idle.get(name, ()))

    def close(self, timeout: float = 5.0) -> None:
        """Stop every kernel, pooled or handed out, and wait for them."""
        kernels = [k for q in self._idle.values() for k in q] + self._stopping
        self._idle.clear()
        self._stopping = []
        for kernel in kernels:
            kernel.stop()
        deadline = time.monotonic() + timeout
        for kernel in kernels:
            if isinstance(kernel, KernelProcess):
                try:
                    kernel.popen.wait(max(deadline - time.monotonic(), 0.01))
                except subprocess.TimeoutExpired:
                    kernel.popen.kill()
                    kernel.popen.wait()
            remove_kernel_files(kernel.kernel)
        if self._template is not None:
            self._template.close()  # it stops the kernels it forked, and waits for them
            self._template = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


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
        from nbflow.runtime.kernel_sources import HandedKernel, NoKernels, use_kernel_source
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
