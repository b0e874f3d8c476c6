"""The fork server: a process that only forks attempt processes from the worker's warm state.

After `fork()` parent and child share every page until one of them writes it, and whoever writes
first pays for a copy (a page fault costs several microseconds on this kind of machine). A worker
that forks and then does its own work — claiming, recording, answering XCom reads — writes pages
shared with every process it forked and pays about a thousand faults per attempt. So the worker
forks once, this server, which then forks every attempt process and touches almost nothing in
between. The worker keeps doing the database work in pages it no longer shares.

Protocol on a SOCK_SEQPACKET socket (one message per packet):
worker → server: `fork` (make one attempt process), `retire` (fork no more; exit when children end).
server → worker: `{"spare": pid}` with the worker's end of that process's socket attached (SCM_RIGHTS),
and `{"exit": pid, "code": exit_code}` when an attempt process ends.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import traceback
from collections.abc import Callable

MAX_MESSAGE = 4096


def serve(control: socket.socket, attempt_main: Callable[[socket.socket], int]) -> int:
    """Fork on request until retired or the worker is gone, then wait for the children; never returns early."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the worker decides when attempts stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "control")
    selector.register(wake_read, selectors.EVENT_READ, "signal")
    children: set[int] = set()
    open_ = True
    while open_ or children:
        for key, _ in selector.select():
            if key.data == "signal":
                try:
                    os.read(wake_read, 4096)
                except BlockingIOError:
                    pass
            elif open_:
                try:
                    request = control.recv(MAX_MESSAGE)
                except OSError:
                    request = b""
                if request == b"fork":
                    children.add(_fork_one(control, attempt_main, wake_read, wake_write))
                else:  # retire, or the worker closed its end
                    open_ = False
                    selector.unregister(control)
        _reap(control, children)
    return 0


def _fork_one(control: socket.socket, attempt_main: Callable[[socket.socket], int], *inherited: int) -> int:
    worker_end, attempt_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the attempt process: never returns
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for fd in inherited:
                os.close(fd)
            control.close()
            worker_end.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            code = attempt_main(attempt_end)
        except BaseException:  # noqa: BLE001 - the process must always leave through os._exit
            traceback.print_exc()
        finally:
            os._exit(code)
    attempt_end.close()
    try:
        socket.send_fds(control, [json.dumps({"spare": pid}).encode()], [worker_end.fileno()])
    except OSError:  # the worker is gone: the new process reads end of file and exits
        pass
    worker_end.close()
    return pid


def _reap(control: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        try:
            control.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
        except OSError:
            pass


def receive(control: socket.socket) -> tuple[dict | None, socket.socket | None]:
    """The worker's side: the server's next message and the socket it carried; (None, None) at its end."""
    try:
        data, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 1)
    except BlockingIOError:
        raise
    except OSError:
        return None, None
    if not data:
        for fd in fds:
            os.close(fd)
        return None, None
    return json.loads(data), (socket.socket(fileno=fds[0]) if fds else None)
