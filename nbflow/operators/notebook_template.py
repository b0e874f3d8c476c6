"""A kernel template: one process that has imported ipykernel forks each new Python kernel.

A Python kernel spends most of its start-up importing IPython and ipykernel (about two thirds of
its ~0.3 CPU-seconds here). The template (`python -m nbflow.operators.notebook_template`) does
that once; each kernel is then a fork that only runs `IPKernelApp.initialize`. The template is
single-threaded and has no ZMQ context when it forks (checked at start-up), so each kernel
creates all of its sockets and threads itself, as a freshly launched one does. CPython reseeds
`random` in forked children; nothing else with process-wide state is imported.

Only kernelspecs that run this interpreter's `ipykernel_launcher` use it (the standard `python3`);
any other kernel starts as its own process (notebook_kernels.launch_kernel).

Protocol, JSON lines: the pool writes `{"launch": {...}}` and reads `{"pid": N}`; `{"stop": N}` asks
the template to end kernel N (SIGTERM, SIGKILL after a grace period) and reap it. The template
never reaps a kernel it was not told to stop, so a kernel that died stays a zombie: its pid cannot
be reused while the pool may still look at it. When its stdin closes, the template stops every
kernel and exits.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

KILL_GRACE = 5.0
ANSWER_TIMEOUT = 60.0  # the first answer waits for the template's imports, slow on a busy machine without .pyc
_LAUNCHER_MODULES = frozenset({"ipykernel_launcher", "ipykernel"})


def template_args(argv: tuple[str, ...]) -> list[str] | None:
    """The kernel's own arguments when a kernelspec's argv is this interpreter's `-m ipykernel_launcher -f
    {connection_file} ...`, else None (the kernel must be started as its own process)."""
    python_names = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2], sys.executable}
    if len(argv) < 5 or argv[0] not in python_names or argv[1] != "-m" or argv[2] not in _LAUNCHER_MODULES:
        return None
    rest = list(argv[3:])
    if "{connection_file}" not in rest:
        return None
    return rest


# --- the pool's side -------------------------------------------------------------------------

class KernelTemplate:
    """The template process, seen from the pool that started it."""

    def __init__(self) -> None:
        self.popen = subprocess.Popen([sys.executable, "-m", "nbflow.operators.notebook_template"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, bufsize=0,
                                      start_new_session=True, env={**os.environ, "JPY_PARENT_PID": str(os.getpid())})
        self._buffer = b""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _request(self, message: dict[str, Any], *, reply: bool) -> dict[str, Any] | None:
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.popen.stdin.write((json.dumps(message) + "\n").encode())
        self.popen.stdin.flush()
        if not reply:
            return None
        while True:
            answer = json.loads(self._read_line())
            if not answer.get("ready"):
                return answer  # type: ignore[no-any-return]

    def _read_line(self) -> bytes:
        """One line from the template, or OSError (and the template killed) if it does not answer."""
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(fd, 65536) if ready else None
            if not chunk:
                self.popen.kill()
                raise OSError("the kernel template exited" if chunk == b"" else
                              f"the kernel template did not answer within {ANSWER_TIMEOUT:g} s")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def launch(self, *, args: list[str], cwd: str | None, env: dict[str, str], stderr_file: str) -> int:
        """Fork a kernel; its pid. `args` are ipykernel's arguments (connection file filled in)."""
        answer = self._request({"launch": {"args": args, "cwd": cwd, "env": env, "stderr_file": stderr_file}},
                               reply=True)
        assert answer is not None
        if "error" in answer:
            raise OSError(f"the kernel template could not start a kernel: {answer['error']}")
        return int(answer["pid"])

    def stop(self, pid: int) -> None:
        try:
            self._request({"stop": pid}, reply=False)
        except (OSError, ValueError):  # the template is gone, and its kernels with it
            pass

    def close(self, timeout: float = KILL_GRACE + 2) -> None:
        try:
            if self.popen.stdin is not None:
                self.popen.stdin.close()
            self.popen.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.popen.kill()
            self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


# --- the template process --------------------------------------------------------------------

def _preload() -> None:
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]  # as ipykernel_launcher does; IPython puts '' back in each kernel
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import IPython.core.completer  # noqa: F401
    import IPython.display  # noqa: F401 - what record() uses
    import nbflow.notebook  # noqa: F401
    import nbflow.utils.serialization  # noqa: F401
    import threading
    if threading.active_count() != 1:
        raise RuntimeError(f"kernel template: imports started threads {threading.enumerate()}; cannot fork")


def _child(request: dict[str, Any]) -> None:
    """In the fork: become a kernel exactly like `python -m ipykernel_launcher <args>`; never returns."""
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(request["stderr_file"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        os.closerange(3, 1024)  # the template's protocol pipes and anything else it held
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["JPY_PARENT_PID"] = str(os.getppid())  # ipykernel exits when the template is gone
        if request.get("cwd"):
            os.chdir(request["cwd"])
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.argv = [_LAUNCHER_FILE, *request["args"]]
        from ipykernel.kernelapp import IPKernelApp
        IPKernelApp.launch_instance(argv=list(request["args"]))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - report and leave; never return into the template's loop
        import traceback
        traceback.print_exc()
    finally:
        os._exit(code)


_LAUNCHER_FILE = "ipykernel_launcher"


def serve() -> int:
    global _LAUNCHER_FILE
    _preload()
    import importlib.util
    found = importlib.util.find_spec("ipykernel_launcher")
    _LAUNCHER_FILE = found.origin if found is not None and found.origin else _LAUNCHER_FILE
    out = sys.stdout
    children: set[int] = set()
    stopping: dict[int, float] = {}

    def answer(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    answer({"ready": True})
    stdin = sys.stdin.fileno()
    buffer = b""
    open_ = True
    while open_ or children:
        readable, _, _ = select.select([stdin] if open_ else [], [], [], 0.2 if stopping or not open_ else None)
        if readable:
            data = os.read(stdin, 65536)
            if not data:
                open_ = False
                now = time.monotonic()
                for pid in children:
                    stopping.setdefault(pid, now)
                    _signal(pid, signal.SIGTERM)
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                if "launch" in request:
                    try:
                        pid = os.fork()
                    except OSError as err:
                        answer({"error": str(err)})
                        continue
                    if pid == 0:
                        _child(request["launch"])
                    children.add(pid)
                    answer({"pid": pid})
                elif "stop" in request and request["stop"] in children:
                    stopping.setdefault(request["stop"], time.monotonic())
                    _signal(request["stop"], signal.SIGTERM)
        now = time.monotonic()
        for pid, since in list(stopping.items()):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                stopping.pop(pid)
                children.discard(pid)
            elif now - since > KILL_GRACE:
                _signal(pid, signal.SIGKILL)
    return 0


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(serve())
