"""The fork server: a process that only forks attempt processes from a warm state.

After `fork()` parent and child share every page until one of them writes it, and whoever writes
first pays for a copy (a page fault costs several microseconds on this kind of machine). A worker
that forks and then does its own work — claiming, recording, answering XCom reads — writes pages
shared with every process it forked and pays about a thousand faults per attempt. So the worker
spawns this server (`python -m nbflow.runtime.fork_server`), which imports only what attempts
need (no SQLAlchemy: half the pages to copy page tables for, and to tear down, per attempt),
parses the DAG files, and then forks every attempt process, touching almost nothing in between.

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
from typing import TYPE_CHECKING, Any

from nbflow.runtime import process_tree
from nbflow.runtime.process_tree import end_descendants, lead_group, own_attempt

if TYPE_CHECKING:
    from pathlib import Path

    from nbflow.runtime.attempt_process import AttemptHost

MAX_MESSAGE = 4096
_PR_SET_PDEATHSIG = 1
_prctl = None


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), so nothing outlives its supervisor.

    A worker killed with `kill -9` takes its fork server along, and a fork server its attempts: an
    attempt left running would run its task again alongside the retry the restarted scheduler starts.
    `parent` is the pid this process was started by; if it is already gone, this process leaves now.
    """
    global _prctl
    if _prctl is None:
        try:
            import ctypes
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):  # not Linux: the socket's end of file stops what it can
            _prctl = False
    if _prctl:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def serve(control: socket.socket, attempt_main: Callable[[socket.socket], int]) -> int:
    """Fork on request until retired or the worker is gone, then wait for the children; never returns early."""
    process_tree.become_subreaper()  # a killed attempt's orphans come here, to be ended (see _reap)
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
                elif request.startswith(LEARN):
                    learn(request[len(LEARN):].decode())
                else:  # retire, or the worker closed its end
                    open_ = False
                    selector.unregister(control)
        _reap(control, children)
    return 0


LEARN = b"learn "


def learn(path: str) -> None:
    """Build the DAGs of kernel cells (a DagSource saved as JSON at `path`) here, once, so that the
    processes forked from now on find them built instead of each building them for its attempt."""
    try:
        from nbflow.runtime.dag_source import DagSource, dags_from_cells
        with open(path, encoding="utf-8") as file:
            dags_from_cells(DagSource.from_dict(json.load(file)))
    except Exception:  # noqa: BLE001 - only a speed-up: an attempt builds what is not built here
        pass


def _fork_one(control: socket.socket, attempt_main: Callable[[socket.socket], int], *inherited: int) -> int:
    worker_end, attempt_end = socket.socketpair()
    server = os.getpid()
    pid = os.fork()
    if pid == 0:  # the attempt process: never returns
        code = 1
        try:
            die_with_parent(server)
            own_attempt()  # its own process group, and its orphans' parent: all of it ends with the attempt
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
            end_attempt_processes()
            os._exit(code)
    lead_group(pid)  # also from this side, so that the group exists before anyone signals it
    attempt_end.close()
    try:
        socket.send_fds(control, [json.dumps({"spare": pid}).encode()], [worker_end.fileno()])
    except OSError:  # the worker is gone: the new process reads end of file and exits
        pass
    worker_end.close()
    return pid


def end_attempt_processes() -> None:
    """In an attempt process about to exit: end what its task started (never raises)."""
    try:
        end_descendants()
    except Exception:  # noqa: BLE001 - the exit must happen whatever this meets
        traceback.print_exc()


def _reap(control: socket.socket, children: set[int]) -> None:
    ended = False
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            break
        if pid not in children:
            continue  # an orphan of a killed attempt, adopted by this subreaper and ended below
        ended = True
        children.discard(pid)
        try:
            control.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
        except OSError:
            pass
    if ended:  # a killed attempt's descendants were reparented here: they end with it
        _end_orphans(children)


def _end_orphans(children: set[int]) -> None:
    orphans = [pid for pid in process_tree.children(os.getpid()) if pid not in children]
    if orphans:
        process_tree.end_processes([p for o in orphans for p in (o, *process_tree.descendants(o))], grace=0)


def receive(control: socket.socket) -> tuple[dict | None, socket.socket | None]:
    """The worker's side: the server's next message and the socket it carried; (None, None) at its end."""
    try:
        data, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 1)
    except BlockingIOError:  # nothing to read after all: the caller tries again later
        raise
    except OSError:
        return None, None
    if not data:
        for fd in fds:
            os.close(fd)
        return None, None
    return json.loads(data), (socket.socket(fileno=fds[0]) if fds else None)


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse the DAG files, warm up, then serve the worker on the inherited socket."""
    import argparse
    import gc
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="nbflow-fork-server")
    parser.add_argument("--dags-folder", required=True, type=Path)
    parser.add_argument("--control-fd", required=True, type=int)
    parser.add_argument("--worker-pid", type=int, default=None, help="the worker that started it (default: parent)")
    args = parser.parse_args(argv)
    die_with_parent(args.worker_pid if args.worker_pid is not None else os.getppid())
    control = socket.socket(fileno=args.control_fd)
    host = warm_host(args.dags_folder)
    gc.collect()
    gc.freeze()  # parsed DAGs and imports stay shared with the attempts instead of copied by gc
    return serve(control, lambda sock: _attempt(sock, host))


def _good_files(config: Any) -> "set[str] | None":
    """The files the DAG processor parsed into DAGs (asked on a short-lived engine, disposed before forking)."""
    from nbflow.runtime.dag_processor import good_files
    from nbflow.store import make_engine, make_session_factory
    engine = make_engine(config.sql_alchemy_conn)
    try:
        return good_files(make_session_factory(engine))
    finally:
        engine.dispose()


def warm_host(dags_folder: "Path") -> "AttemptHost":
    """Import what attempts need, parse the DAGs and build what each attempt would build for itself."""
    from nbflow.configuration import load_config
    from nbflow.operators.python import warm_up_callable
    from nbflow.runtime.attempt_process import AttemptHost, Rehearsal, preload
    from nbflow.runtime.dagbag import DagBag

    preload()
    config = load_config()
    dagbag = DagBag(dags_folder, import_timeout=config.getfloat("core", "dagbag_import_timeout"), collect=False,
                    only_files=lambda: _good_files(config))
    dagbag.collect()
    for dag in dagbag.dags.values():
        dag.get_template_env()
        for task in dag.tasks:
            warm_up_callable(getattr(task, "python_callable", None))
    rehearsal = Rehearsal(config.home / "rehearsal")
    rehearsal.run()  # here once, so that what an attempt imports on first use is imported already
    import nbflow.runtime.attempt_channel  # noqa: F401
    import nbflow.runtime.kernel_pool  # noqa: F401
    import nbflow.runtime.kernel_sources  # noqa: F401
    return AttemptHost(dags=dict(dagbag.dags), log_folder=config.log_folder,
                       max_xcom_size=config.getint("core", "max_xcom_size"), rehearsal=rehearsal)


def _attempt(sock: socket.socket, host: "AttemptHost") -> int:
    from nbflow.runtime.attempt_process import attempt_main
    from nbflow.runtime.kernel_sources import NoKernels, use_kernel_source

    use_kernel_source(NoKernels())  # a notebook task here starts its own kernel (pooled ones go through the worker)
    return attempt_main(sock, host)


if __name__ == "__main__":
    import sys
    sys.exit(main())
