"""Jupyter kernels for notebook tasks: find a kernelspec, start a kernel as a plain process.

Nothing here opens a ZMQ socket or starts a thread, so the local executor's worker can keep a pool
and still fork attempts safely: a kernel is only a process and its connection file until the task
that uses it attaches a client of its own (`notebook_run.py`). A kernel runs one notebook and is
then stopped. Pools of pre-started kernels belong to the runtime (`nbflow.runtime.kernel_pool`),
which decides how many run and who gets one; a task only asks `kernel_source()` for one.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
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
        remove_kernel_files(self.kernel)
        return True

    def stop_and_wait(self, timeout: float = 5.0) -> None:
        self.stop()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        remove_kernel_files(self.kernel)


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
        remove_kernel_files(self.kernel)
        return True

    def stop_and_wait(self, timeout: float = 5.0) -> None:
        self.stop()
        remove_kernel_files(self.kernel)


StartedKernel = KernelProcess | ForkedKernel


def remove_kernel_files(kernel: LaunchedKernel) -> None:
    """Remove a stopped kernel's connection, stderr and IPC socket files."""
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


# --- where a notebook task gets its kernel ---------------------------------------------------

class KernelSource(Protocol):
    """Hands a task a fresh kernel of a spec (None: start one yourself) and takes it back when done."""

    def take(self, spec: KernelSpecInfo) -> LaunchedKernel | None: ...

    def release(self, kernel: LaunchedKernel) -> None: ...


KernelSourceProvider = Callable[[int], "KernelSource | None"]
"""Given `[notebook] kernel_pool_size`, the source of pre-started kernels for this process, if any."""

_provider: KernelSourceProvider | None = None


def provide_kernel_sources(provider: KernelSourceProvider | None) -> None:
    """Installed by the runtime, which owns the kernel pools; operators never import the runtime."""
    global _provider
    _provider = provider


def kernel_source(pool_size: int) -> KernelSource | None:
    """Where a notebook task in this process gets a pre-started kernel; None: it starts its own."""
    return _provider(pool_size) if _provider is not None else None
