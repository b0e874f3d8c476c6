"""Jupyter kernels for notebook tasks: find a kernelspec, start a kernel as a plain process, keep a pool.

Nothing here opens a ZMQ socket or starts a thread, so the local executor's worker can keep a pool
and still fork attempts safely: a kernel is only a process and its connection file until the task
that uses it attaches a client of its own (`notebook_run.py`). A kernel runs one notebook and is
then stopped; the pool never takes one back.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nbflow.operators.notebook_template import KernelTemplate

# Pooled kernels get the task's working directory and environment by running code in the kernel
# before the notebook (notebook_run.py); only Python kernels can be told that way.
POOLABLE_LANGUAGES = frozenset({"python"})


@dataclass(frozen=True, slots=True)
class KernelSpecInfo:
    """What starting a kernel needs from its kernelspec."""

    name: str
    language: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    resource_dir: str

    @property
    def poolable(self) -> bool:
        return self.language.lower() in POOLABLE_LANGUAGES

    @property
    def is_ipykernel(self) -> bool:
        return any("ipykernel" in arg for arg in self.argv)


@dataclass(frozen=True, slots=True)
class LaunchedKernel:
    """A started kernel, as a task reaches it: its connection file, process id and stderr file."""

    kernel_name: str
    language: str
    connection_file: str
    pid: int
    stderr_file: str

    def stderr_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.stderr_file).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


_specs: dict[str, KernelSpecInfo] = {}


def find_kernel_spec(name: str) -> KernelSpecInfo | None:
    """The installed kernelspec called `name` (Jupyter's search path), or None."""
    if name in _specs:
        return _specs[name]
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return None
    info = KernelSpecInfo(name=name, language=spec.language or "", argv=tuple(spec.argv),
                          env=tuple((str(k), str(v)) for k, v in (spec.env or {}).items()),
                          resource_dir=spec.resource_dir)
    _specs[name] = info
    return info


def known_kernel_names() -> list[str]:
    from jupyter_client.kernelspec import KernelSpecManager
    return sorted(KernelSpecManager().find_kernel_specs())


def kernel_is_alive(pid: int) -> bool:
    """True while process `pid` runs; a zombie (exited, not yet reaped by its parent) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class _Started:
    """A kernel started for the pool: when it started, and when it was told to stop (never reused)."""

    def __init__(self, kernel: LaunchedKernel) -> None:
        self.kernel = kernel
        self.started_at = time.monotonic()
        self.stopped_at: float | None = None


class KernelProcess(_Started):
    """A kernel process this process started (as its own child), and so must stop and reap."""

    def __init__(self, kernel: LaunchedKernel, popen: subprocess.Popen[bytes]) -> None:
        super().__init__(kernel)
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """Ask the kernel to end now (SIGTERM); `reap` finishes the job. Its state is never reused."""
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def reap(self, *, kill_after: float = 5.0) -> bool:
        """True once the process is gone and its files removed; SIGKILL if SIGTERM was ignored."""
        if self.popen.poll() is None:
            if self.stopped_at is not None and time.monotonic() - self.stopped_at > kill_after:
                self.popen.kill()
            return False
        _remove_kernel_files(self.kernel)
        return True

    def stop_and_wait(self, timeout: float = 5.0) -> None:
        self.stop()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        _remove_kernel_files(self.kernel)


class ForkedKernel(_Started):
    """A kernel forked by the pool's kernel template (notebook_template.py), which stops and reaps it."""

    def __init__(self, kernel: LaunchedKernel, template: "KernelTemplate") -> None:
        super().__init__(kernel)
        self.template = template

    @property
    def pid(self) -> int:
        return self.kernel.pid

    def alive(self) -> bool:
        # The template reaps a kernel only once told to stop it, so until then its pid is its own. A kernel
        # whose template died is about to exit too (ipykernel watches its parent).
        return self.stopped_at is None and self.template.alive() and kernel_is_alive(self.kernel.pid)

    def stop(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
            self.template.stop(self.kernel.pid)

    def reap(self, *, kill_after: float = 5.0) -> bool:
        """The template escalates to SIGKILL and reaps; only the files are left to this side."""
        _remove_kernel_files(self.kernel)
        return True

    def stop_and_wait(self, timeout: float = 5.0) -> None:
        self.stop()
        _remove_kernel_files(self.kernel)


StartedKernel = KernelProcess | ForkedKernel


def _remove_kernel_files(kernel: LaunchedKernel) -> None:
    base = kernel.connection_file[: -len(".json")]
    for path in [kernel.connection_file, kernel.stderr_file, *(f"{base}-{n}" for n in range(1, 6))]:
        try:
            os.unlink(path)
        except OSError:
            pass


def kernel_folder() -> Path:
    """A private folder for connection files and IPC sockets; short, because a socket path has ~100 bytes.

    Named after this process, so that folders left by a process that was killed are removed here.
    """
    for stale in Path(tempfile.gettempdir()).glob("nbflow-k-*-*"):
        owner = stale.name.split("-")[2]
        if owner.isdigit() and not _process_exists(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"nbflow-k-{os.getpid()}-"))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Launch:
    """A new kernel's connection file (IPC sockets in `folder`), stderr file and environment.

    IPC rather than TCP: no port can be taken by someone else between choosing it and the kernel
    binding it, which matters when many kernels start at once.
    """

    def __init__(self, spec: KernelSpecInfo, folder: Path, env: dict[str, str] | None) -> None:
        from jupyter_client.connect import write_connection_file

        base = folder / f"k{uuid.uuid4().hex[:10]}"
        self.spec = spec
        self.connection_file = f"{base}.json"
        self.stderr_file = f"{base}.err"
        write_connection_file(self.connection_file, transport="ipc", ip=str(base), key=uuid.uuid4().hex.encode(),
                              kernel_name=spec.name)
        self.names = {"connection_file": self.connection_file, "resource_dir": spec.resource_dir,
                      "prefix": sys.prefix}
        self.env = dict(os.environ if env is None else env)
        self.env.update({k: self.fill(v) for k, v in spec.env})
        self.env["JPY_PARENT_PID"] = str(os.getpid())  # ipykernel exits when this process is gone

    def fill(self, text: str) -> str:
        for key, value in self.names.items():
            text = text.replace("{" + key + "}", value)
        return text

    def extra_args(self) -> list[str]:
        # No shared sqlite history between kernels running side by side (nbclient does the same).
        return ["--HistoryManager.hist_file=:memory:"] if self.spec.is_ipykernel else []

    def kernel(self, pid: int) -> LaunchedKernel:
        return LaunchedKernel(kernel_name=self.spec.name, language=self.spec.language,
                              connection_file=self.connection_file, pid=pid, stderr_file=self.stderr_file)


def launch_kernel(spec: KernelSpecInfo, folder: Path, *, cwd: str | None = None,
                  env: dict[str, str] | None = None) -> KernelProcess:
    """Start a kernel as its own process from its kernelspec's argv, not waiting for it to be ready."""
    launch = _Launch(spec, folder, env)
    argv = [launch.fill(arg) for arg in spec.argv] + launch.extra_args()
    if argv and argv[0] in {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}:
        argv[0] = sys.executable  # as jupyter_client does: the kernel runs in this interpreter's environment
    with open(launch.stderr_file, "wb") as stderr:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                 cwd=cwd, env=launch.env, start_new_session=True)
    return KernelProcess(launch.kernel(popen.pid), popen)


def fork_kernel(spec: KernelSpecInfo, folder: Path, template: "KernelTemplate") -> ForkedKernel | None:
    """Fork a kernel from the template when the spec runs this interpreter's ipykernel, else None."""
    from nbflow.operators.notebook_template import template_args
    args = template_args(spec.argv)
    if args is None:
        return None
    launch = _Launch(spec, folder, None)
    pid = template.launch(args=[launch.fill(a) for a in args] + launch.extra_args(), cwd=None, env=launch.env,
                          stderr_file=launch.stderr_file)
    return ForkedKernel(launch.kernel(pid), template)


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
            _remove_kernel_files(kernel.kernel)
        if self._template is not None:
            self._template.close()  # it stops the kernels it forked, and waits for them
            self._template = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


# --- where a notebook task gets its kernel ---------------------------------------------------

class KernelSource(Protocol):
    """Hands a task a fresh kernel of a spec (None: start one yourself) and takes it back when done."""

    def take(self, spec: KernelSpecInfo) -> LaunchedKernel | None: ...

    def release(self, kernel: LaunchedKernel) -> None: ...


class PoolSource:
    """A process's own pool: used by in-process runs, `tasks test` and the sequential executor."""

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


_source: KernelSource | None = None
_source_pid: int | None = None


def use_kernel_source(source: KernelSource | None) -> None:
    """Install where notebook tasks in this process get kernels (the worker's forked attempts do)."""
    global _source, _source_pid
    _source, _source_pid = source, os.getpid()


def kernel_source(pool_size: int) -> KernelSource:
    """The installed source, else this process's own pool, built on first use and closed at exit."""
    global _source, _source_pid
    if _source is None or _source_pid != os.getpid():  # never use a pool inherited through fork
        pool = PoolSource(pool_size)
        import atexit
        atexit.register(pool.close)
        _source, _source_pid = pool, os.getpid()
    return _source
