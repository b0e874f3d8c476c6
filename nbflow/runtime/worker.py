"""The local executor's warm worker: parse DAG files once, run each attempt in a forked process.

The worker is the attempts' supervisor. It claims an attempt in the metadata database, hands it
to a process forked from its warm state (ideally one forked ahead of need), answers the XCom
reads that process asks for, and records the outcome it sends back — with the downstream tasks
that outcome made ready (the mini-scheduler), which it starts at once. The task's own code runs
only in the forked process, so a crash, leak, `os._exit` or segfault ends that process alone; an
attempt process that ends without an outcome is reported as dead and the scheduler fails or
retries it.

Protocol with the scheduler (JSON lines): stdin carries Workloads; stdout carries `{"ready": true}`
once, `{"started": workload}` for each downstream task the worker queued itself, and one
`{"key": ..., "try_number": ..., "exit_code": ...}` per attempt (0: its result is recorded; 4,
`EXIT_DAG_NOT_LOADABLE`: its DAG or task did not load here, the try is claimed and its log says why). When
stdin closes (the scheduler stopped or died), the worker starts nothing new, waits for its running
attempts, records them, and exits.
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nbflow.configuration import load_config
from nbflow.runtime import process_tree
from nbflow.runtime.attempt_process import preload
from nbflow.runtime.fork_server import LEARN
from nbflow.runtime.refusals import why_not_loadable
from nbflow.runtime.workload import Workload


SPARES = 2  # processes forked ahead of need; each costs a few MB of copied pages while it waits


@dataclass
class _Attempt:
    """One running attempt process, as its supervisor sees it."""

    workload: Workload
    sock: socket.socket
    started_at: float = field(default_factory=time.monotonic)
    buffer: bytes = b""
    recorded: bool = False
    record_error: str = ""
    closed: bool = False  # its socket reached end of file: the process wrote all it will write
    server: socket.socket | None = None  # the fork server that made it (None: forked by the worker)
    orphan: bool = False  # its fork server died: no exit code will come, its socket's end decides
    try_number: int = 0
    max_tries: int | None = None
    stopped: bool = False  # killed because the database no longer has it running (cleared, failed elsewhere)
    overdue: bool = False  # killed because it outlived its execution_timeout by 10 s


class Worker:
    def __init__(self, dags_folder: Path, parallelism: int, *, executor: str = "local", followups: bool = True) -> None:
        from nbflow.runtime.dagbag import DagBag
        from nbflow.runtime.xcom_db import DbXComStore
        from nbflow.store import make_engine, make_session_factory

        preload()  # for the attempts this worker forks itself (notebook tasks with a pooled kernel)
        self.config = load_config()
        self.parallelism = parallelism
        self.executor = executor  # named on the downstream instances it queues
        # Whether an ending attempt queues and starts the downstream tasks it made ready (the mini-scheduler);
        # the sequential executor leaves every decision to the scheduler, one attempt per hand-over.
        self.followups = followups
        from nbflow.runtime.xcom_encryption import configure_xcom_encryption
        configure_xcom_encryption(self.config)  # the XComs this worker records (core.encrypt_xcom)
        self.engine = make_engine(self.config.sql_alchemy_conn)
        self.sessions = make_session_factory(self.engine)
        from nbflow.runtime.dag_processor import good_files
        sessions = self.sessions
        self.dagbag = DagBag(dags_folder, import_timeout=self.config.getfloat("core", "dagbag_import_timeout"),
                             collect=False, only_files=lambda: good_files(sessions))
        self.readers = make_session_factory(self.engine, read_only=True)
        self.xcoms = DbXComStore(self.sessions, self.readers)
        self.runs: dict[tuple[str, str], Any] = {}  # what attempts see of each run (begin_attempt)
        self.log_folder = self.config.log_folder
        self.max_xcom_size = self.config.getint("core", "max_xcom_size")
        self.heartbeat = self.config.getfloat("scheduler", "task_heartbeat_sec", 2.0)
        self.pending: deque[Workload] = deque()
        self.children: dict[int, _Attempt] = {}
        self.stdin_open = True
        self.out = sys.stdout
        self._buffer = ""
        # Processes forked ahead of need: each has paid for its fork before a workload exists,
        # then waits on its socket for exactly one attempt.
        self.spares: dict[int, socket.socket] = {}
        self.max_spares = min(SPARES, parallelism)
        self.server: socket.socket | None = None  # control socket of the current fork server
        self.server_pids: dict[socket.socket, int] = {}  # every fork server still running, retired too
        self.forks_asked = 0  # processes asked of the current fork server and not yet received
        self._server_procs: list[Any] = []  # Popen objects of fork servers
        self._server_starts: list[float] = []
        self._last_beat = time.monotonic()
        self._stamps: dict[str, int | None] = {}
        self.selector = selectors.DefaultSelector()
        self._warm_up()
        from nbflow.runtime.kernel_pool import WorkerKernels
        self.kernels = WorkerKernels(self.config.getint("notebook", "kernel_pool_size"),
                                     self.config.path("core", "notebooks_folder"))
        self.kernels.prestart(self.dagbag.dags.values())  # notebook tasks: kernels started ahead of need

    def _warm_up(self) -> None:
        """Parse the DAG files and compile the statements that claim and record attempts, once, here."""
        from nbflow.runtime.attempt import warm_up_statements
        self.dagbag.collect()
        try:
            warm_up_statements(self.sessions)
        except Exception as err:  # noqa: BLE001 - only a speed-up; attempts work without it
            print(f"nbflow worker: warm-up skipped: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
                  file=sys.stderr)

    def send(self, message: dict) -> None:
        try:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):  # the scheduler is gone; results are in the database
            pass

    # -- the loop ----------------------------------------------------------------------------------

    def serve(self) -> int:
        process_tree.become_subreaper()  # orphans of the attempts it forks come here (reaped in _reap)
        signal.signal(signal.SIGTERM, self._on_term)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        self.selector.register(read_fd, selectors.EVENT_READ, "signal")
        self._wake_fds = (read_fd, write_fd)
        self._start_fork_server()
        self.send({"ready": True, "pid": os.getpid()})
        while self.stdin_open or self.children:
            for key, _ in self.selector.select(timeout=self._select_timeout()):
                if key.data == "stdin":
                    self._read_stdin()
                elif key.data == "signal":
                    try:
                        os.read(read_fd, 4096)
                    except BlockingIOError:
                        pass
                elif key.data == "server":
                    self._read_server(key.fileobj)  # type: ignore[arg-type]
                else:
                    self._read_attempt(key.data)
            self._reap()
            self._kill_overdue()
            self._heartbeat_children()
            while self.stdin_open and self.pending and len(self.children) < self.parallelism:
                if not self._start(self.pending[0]):
                    break  # no process ready yet: the fork server is making one
                self.pending.popleft()
            self._ensure_spares()
            self.kernels.tick()
        self._discard_spares()
        for control in list(self.server_pids):
            self._retire_server(control)
        self.kernels.close()
        return 0

    def _select_timeout(self) -> float | None:
        deadlines = [a.started_at + a.workload.execution_timeout + 10 for a in self.children.values()
                     if a.workload.execution_timeout]
        if deadlines:
            return min(max(min(deadlines) - time.monotonic(), 0.05), self.heartbeat)
        return self.heartbeat if self.children else (0.5 if self.kernels.busy else None)

    def _read_stdin(self) -> None:
        data = os.read(sys.stdin.fileno(), 65536)
        if not data:
            self.stdin_open = False
            self.selector.unregister(sys.stdin.fileno())
            self.pending.clear()
            self._discard_spares()
            return
        self._buffer += data.decode()
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            if line.strip():
                workload = Workload.from_json(line)
                self._teach(workload)
                self.pending.append(workload)

    # -- starting an attempt ------------------------------------------------------------------------

    def _start(self, workload: Workload) -> bool:
        """Claim the attempt and hand it to a waiting process; False when no process is ready yet."""
        from nbflow.runtime.attempt import EXIT_NOT_CLAIMED, begin_attempt
        from nbflow.store import session_scope

        self._refresh_if_changed(workload)
        try:
            dag = self._dag(workload)
        except Exception as err:  # noqa: BLE001 - cells that no longer build: the attempt fails, nothing else
            return self._refuse(workload, f"DAG {workload.dag_id!r} did not load from {workload.fileloc}: {err}")
        reason = why_not_loadable(workload, dag, sessions=self.readers, local_errors=self.dagbag.import_errors)
        if reason is not None:
            return self._refuse(workload, reason)
        task = dag.task_dict.get(workload.task_id)
        kernel = self.kernels.take_for(task) if getattr(task, "kernel_wanted", None) else None
        if kernel is not None:  # a notebook task gets its pooled kernel through a fork of this worker
            (pid, sock), server = self._fork(kernel), None
        elif workload.dag_id in self.dagbag.kept:  # its file broke: only this worker has it as last loaded
            (pid, sock), server = self._fork(None), None
        elif self.spares:
            (pid, sock), server = self.spares.popitem(), self.server
        else:
            return False
        try:
            with session_scope(self.sessions) as session:
                started = begin_attempt(session, workload, pid=pid, runs=self.runs, upstream=self._pulls(workload))
        except Exception as err:  # noqa: BLE001 - the scheduler hands the instance back or fails it
            sock.close()
            self._report(workload, 1, f"could not start the attempt: {type(err).__name__}: {err}")
            return True
        if started is None:  # another process has it, or it was cleared: nothing to run
            self._keep_or_retire(pid, sock, kernel)
            self._report(workload, EXIT_NOT_CLAIMED)
            return True
        self._launch(workload, pid, sock, server, kernel, started)
        return True

    def _refuse(self, workload: Workload, reason: str) -> bool:
        """Its DAG or task does not load here: a failed try, not an attempt handed back (issue 14).

        The instance is claimed (its try counts; pid 0: no process runs it), its log says why, and the
        scheduler fails or retries it by its tries on EXIT_DAG_NOT_LOADABLE. Sent back unclaimed, it
        was queued again at once, for ever, with nothing in any log.
        """
        from nbflow.runtime.attempt import EXIT_DAG_NOT_LOADABLE, EXIT_NOT_CLAIMED, begin_attempt
        from nbflow.runtime.attempt_process import note_not_started
        from nbflow.store import session_scope

        try:
            with session_scope(self.sessions) as session:
                started = begin_attempt(session, workload, pid=0, runs=self.runs)
        except Exception as err:  # noqa: BLE001 - the scheduler hands the instance back or fails it
            self._report(workload, 1, f"could not start the attempt: {type(err).__name__}: {err}")
            return True
        if started is None:  # another process has it, or it was cleared: nothing to run
            self._report(workload, EXIT_NOT_CLAIMED)
            return True
        note_not_started(workload, started.try_number, reason, self.log_folder)
        self._report(workload, EXIT_DAG_NOT_LOADABLE, reason)
        return True

    def _launch(self, workload: Workload, pid: int, sock: socket.socket, server: socket.socket | None,
                kernel: Any, started: Any) -> None:
        """Send a claimed attempt to its waiting process."""
        from nbflow.runtime.attempt_channel import start_message

        self.children[pid] = _Attempt(workload, sock, server=server, try_number=started.try_number,
                                      max_tries=started.max_tries)
        self.kernels.attempt_started(pid, kernel)
        self.selector.register(sock, selectors.EVENT_READ, pid)
        try:
            sock.sendall(start_message(workload, started.try_number, started.run, started.upstream_values,
                                       started.max_tries))
        except OSError:  # it died while waiting: reported as a dead attempt when it is reaped
            pass

    def _pulls(self, workload: Workload) -> Collection[str]:
        """Upstream tasks whose return values a TaskFlow task will pull: read with its claim."""
        from nbflow.authoring.taskflow import DecoratedOperator

        dag = self._dag(workload)
        task = dag.task_dict.get(workload.task_id) if dag is not None else None
        if task is None or workload.map_index >= 0:
            return ()
        if not isinstance(task, DecoratedOperator) and not getattr(task, "pulls_upstream_returns", False):
            return ()
        return task.upstream_task_ids

    def _can_start_at_once(self, workload: Workload) -> bool:
        """Whether a spare can take this workload with no re-parse and no kernel (see `_record`)."""
        if not self.spares or len(self.children) > self.parallelism or not self.stdin_open:
            return False  # (the attempt that just ended still counts among the children)
        try:
            dag = self._dag(workload)
        except Exception:  # noqa: BLE001 - reported when it starts
            return False
        task = dag.task_dict.get(workload.task_id) if dag is not None else None
        if task is None or getattr(task, "kernel_wanted", None):
            return False
        if not workload.source.is_file:
            return True  # kernel cells travel with the workload: nothing to re-parse
        try:
            return self._stamps.get(workload.fileloc) == os.stat(workload.fileloc).st_mtime_ns
        except OSError:
            return False

    def _fork(self, kernel: Any = None) -> tuple[int, socket.socket]:
        """An attempt process forked by this worker itself (notebook tasks with a pooled kernel)."""
        ours, theirs = socket.socketpair()
        self.engine.dispose()  # no database file stays open in the attempt
        worker = os.getpid()
        pid = os.fork()
        if pid == 0:  # the attempt process: never returns
            code = 1
            try:
                from nbflow.runtime.fork_server import die_with_parent
                die_with_parent(worker)
                process_tree.own_attempt()
                ours.close()
                self._leave_worker_state()
                for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                code = self._attempt_process(theirs, kernel)
            except BaseException:  # noqa: BLE001 - the child must always leave through os._exit
                import traceback
                traceback.print_exc()
            finally:
                from nbflow.runtime.fork_server import end_attempt_processes
                end_attempt_processes()
                os._exit(code)
        process_tree.lead_group(pid)
        theirs.close()
        return pid, ours

    def _ensure_spares(self) -> None:
        """Ask the fork server for processes: a few spares, and one per attempt waiting for a process."""
        if self.server is None:
            return
        room = max(self.parallelism - len(self.children), 0)
        want = min(max(self.max_spares, len(self.pending)), room) if self.stdin_open else 0
        while len(self.spares) + self.forks_asked < want:
            try:
                self.server.send(b"fork")
            except OSError:
                return
            self.forks_asked += 1

    def _keep_or_retire(self, pid: int, sock: socket.socket, kernel: Any) -> None:
        if kernel is None and len(self.spares) < self.max_spares:
            self.spares[pid] = sock
        else:
            sock.close()  # end of file: the process exits without running anything
            if kernel is not None:
                self.kernels.attempt_started(pid, kernel)

    def _discard_spares(self) -> None:
        for sock in self.spares.values():
            sock.close()  # end of file: the spare exits without running anything
        self.spares.clear()

    # -- the fork server ------------------------------------------------------------------------------

    def _start_fork_server(self) -> None:
        """Spawn the server that forks attempt processes (see fork_server.py); it parses the DAGs itself."""
        import subprocess

        now = time.monotonic()
        self._server_starts = [t for t in self._server_starts if now - t < 10] + [now]
        if len(self._server_starts) > 5:
            raise RuntimeError("the fork server keeps dying as it starts; see the lines above")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        proc = subprocess.Popen([sys.executable, "-m", "nbflow.runtime.fork_server", "--dags-folder",
                                 str(self.dagbag.dag_folder), "--control-fd", str(theirs.fileno()),
                                 "--worker-pid", str(os.getpid())],
                                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        self.server, self.forks_asked = ours, 0
        self._taught: set[str] = set()  # kernel-cell sources this fork server has built
        self.server_pids[ours] = proc.pid
        self._server_procs.append(proc)  # kept so Python does not reap it behind our back
        self.selector.register(ours, selectors.EVENT_READ, "server")

    def _leave_worker_state(self) -> None:
        """In a process forked from the worker: drop the worker's pipes and sockets, keep its warm state."""
        from nbflow.store import dispose_after_fork

        signal.set_wakeup_fd(-1)
        for fd in self._wake_fds:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)  # stdin and stdout are the scheduler's pipes
        os.dup2(devnull, 1)  # task output goes to its log
        os.close(devnull)
        for sock in [*self.spares.values(), *(a.sock for a in self.children.values()), *self.server_pids]:
            sock.close()
        self.spares.clear()
        self.children.clear()
        self.server_pids.clear()
        self.selector = selectors.DefaultSelector()
        dispose_after_fork(self.engine)  # a task that reads Variables from the metastore opens its own

    def _read_server(self, control: socket.socket) -> None:
        from nbflow.runtime import fork_server

        try:
            message, sock = fork_server.receive(control)
        except BlockingIOError:
            return
        if message is None:  # the server ended (retired, or died)
            self._server_gone(control)
        elif "spare" in message:
            assert sock is not None
            if control is self.server and self.stdin_open:
                self.forks_asked = max(self.forks_asked - 1, 0)
                self.spares[message["spare"]] = sock
            else:
                sock.close()
        elif "exit" in message:
            self._ended(message["exit"], message["code"])

    def _server_gone(self, control: socket.socket) -> None:
        try:
            self.selector.unregister(control)
        except (KeyError, ValueError):
            pass
        control.close()
        gone = self.server_pids.pop(control, None)
        for proc in [p for p in self._server_procs if p.pid == gone]:
            proc.returncode = proc.returncode if proc.returncode is not None else 0  # reaped by _reap
            self._server_procs.remove(proc)
        for pid, attempt in list(self.children.items()):
            if attempt.server is control:  # no exit code will come: its socket's end decides
                attempt.orphan = True
                if attempt.closed:
                    self._ended(pid, None)
        if control is self.server:
            self.server = None
            for sock in self.spares.values():
                sock.close()
            self.spares.clear()
            if self.stdin_open:
                print("nbflow worker: the fork server died; starting another", file=sys.stderr)
                self._start_fork_server()

    def _retire_server(self, control: socket.socket) -> None:
        try:
            control.send(b"retire")
        except OSError:
            pass
        if control is self.server:
            self.server = None

    def _refresh_if_changed(self, workload: Workload) -> None:
        """Re-parse when the workload's DAG file changed (one stat), or its DAG is unknown here."""
        if not workload.source.is_file:
            return  # kernel cells: built from the workload's own text (see _dag)
        try:
            stamp = os.stat(workload.fileloc).st_mtime_ns
        except OSError:
            stamp = None
        if workload.dag_id not in self.dagbag.dags or self._stamps.get(workload.fileloc) != stamp:
            changes = self.dagbag.refresh()
            broken_but_kept = set(self.dagbag.kept.values())
            # a file that broke keeps its DAGs as they were, so the fork server's copy is still right
            if changes.added or changes.removed or set(changes.changed) - broken_but_kept:
                self._discard_spares()  # they hold the DAGs as parsed before the change
                if self.server is not None:
                    self._retire_server(self.server)
                    self._start_fork_server()
            self._stamps[workload.fileloc] = stamp

    # -- inside the attempt process ------------------------------------------------------------------

    def _attempt_process(self, sock: socket.socket, kernel: Any) -> int:
        """In a process this worker forked (a notebook task with its pooled kernel, or a kept DAG's task)."""
        from nbflow.runtime.attempt_process import AttemptHost, attempt_main

        host = AttemptHost(dags=self.dagbag.dags, log_folder=self.log_folder, max_xcom_size=self.max_xcom_size)
        return attempt_main(sock, host, before_run=lambda _: self.kernels.hand_over(kernel))

    # -- what attempts say --------------------------------------------------------------------------

    def _read_attempt(self, pid: int) -> None:
        attempt = self.children.get(pid)
        if attempt is None:
            return
        try:
            data = attempt.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            self._forget_socket(attempt)
            attempt.closed = True
            if attempt.orphan:
                self._ended(pid, None)
            return
        attempt.buffer += data
        self._handle_lines(attempt)

    def _handle_lines(self, attempt: _Attempt) -> None:
        from nbflow.runtime.attempt_channel import answer, encode

        while b"\n" in attempt.buffer:
            line, attempt.buffer = attempt.buffer.split(b"\n", 1)
            message = json.loads(line)
            if "get" in message:
                try:
                    reply = {"value": answer(message["get"], self.xcoms)}
                except Exception as err:  # noqa: BLE001 - the attempt raises it, naming the read
                    reply = {"error": f"{type(err).__name__}: {err}"}
                try:
                    attempt.sock.sendall(encode(reply))
                except OSError:
                    pass
            elif "outcome" in message:
                self._record(attempt, message)

    def _record(self, attempt: _Attempt, message: dict[str, Any]) -> None:
        """Record the outcome, and start at once the downstream tasks it made ready.

        The first of them is claimed in the same transaction when a spare process can take it:
        one write transaction per task of a chain instead of two.
        """
        from nbflow.runtime.attempt import EXIT_NOT_CLAIMED, StartedAttempt, begin_attempt, finish_attempt
        from nbflow.runtime.attempt_channel import read_outcome
        from nbflow.store import retry_on_locked, session_scope

        outcome, xcoms = read_outcome(message)
        dag = self._dag(attempt.workload)

        def write() -> tuple[list[Workload], Workload | None, StartedAttempt | None, int]:
            with session_scope(self.sessions) as session:
                ready = finish_attempt(session, dag, attempt.workload, outcome, xcoms=xcoms,
                                       followups=self.stdin_open and self.followups,
                                       in_flight=self._in_flight(attempt),
                                       executor=self.executor,
                                       max_tries=attempt.max_tries, logical_date=self._logical_date(attempt))
                # what runs next here: a task this one made ready, else the next one waiting
                following = ready[0] if ready else (self.pending[0] if self.pending else None)
                if following is None or not self._can_start_at_once(following):
                    return ready, None, None, 0
                pid = next(iter(self.spares))
                return ready, following, begin_attempt(session, following, pid=pid, runs=self.runs,
                                                              upstream=self._pulls(following)), pid
        try:
            ready, following, started, pid = retry_on_locked(write)
        except Exception as err:  # noqa: BLE001 - reported as a dead attempt: the scheduler decides
            attempt.record_error = f"could not record the attempt's result: {type(err).__name__}: {err}"
            print(f"nbflow worker: {attempt.workload.key}: {attempt.record_error}", file=sys.stderr)
            return
        attempt.recorded = True
        for workload in ready:
            self.send({"started": asdict(workload)})
        if following is not None and not ready:
            self.pending.popleft()  # it was the head of the queue; claimed above, or taken by another
        if following is not None and started is None:
            self._report(following, EXIT_NOT_CLAIMED)  # another process has it, or it was cleared
        elif started is not None:
            assert following is not None
            self._launch(following, pid, self.spares.pop(pid), self.server, None, started)
        if ready and following is not None:
            ready = ready[1:]
        self.pending.extendleft(reversed(ready))

    def _teach(self, workload: Workload) -> None:
        """Have the fork server build a workload's kernel cells once, so later attempts find them built
        (messages to it are small: the source goes through a file)."""
        source = workload.source
        if source.is_file or self.server is None or source.content_hash in self._taught:
            return
        self._taught.add(source.content_hash)
        folder = self.config.home / "sources"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{source.content_hash}.json"
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(source.to_dict()), encoding="utf-8")
                os.replace(tmp, path)
            self.server.send(LEARN + str(path).encode())
        except OSError:
            pass  # attempts build the cells themselves

    def _dag(self, workload: Workload) -> Any:
        """The workload's DAG: parsed from the dags folder here, or built from the kernel cells it carries."""
        from nbflow.runtime.dag_source import load_dag
        return load_dag(workload.source, workload.dag_id, self.dagbag.dags)

    def _logical_date(self, attempt: _Attempt) -> Any:
        """The attempt's run's logical date, if still cached (it seeds the retry delay's jitter)."""
        run = self.runs.get((attempt.workload.dag_id, attempt.workload.run_id))
        return run.logical_date if run is not None else None

    def _in_flight(self, ending: _Attempt) -> frozenset[tuple[str, str, str]]:
        """(dag_id, run_id, task_id) of the attempts this worker runs or holds, other than `ending`."""
        keys = {(a.workload.dag_id, a.workload.run_id, a.workload.task_id)
                for a in self.children.values() if a is not ending and not a.recorded}
        keys.update((w.dag_id, w.run_id, w.task_id) for w in self.pending)
        return frozenset(keys)

    def _forget_socket(self, attempt: _Attempt) -> None:
        try:
            self.selector.unregister(attempt.sock)
        except (KeyError, ValueError):
            pass
        attempt.sock.close()

    def _reap(self) -> None:
        """Reap this worker's own children: fork servers and notebook attempts."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.server_pids.values():
                continue  # its control socket's end of file says the rest
            self._ended(pid, os.waitstatus_to_exitcode(status))

    def _ended(self, pid: int, code: int | None) -> None:
        """An attempt process ended (code None: unknown, its fork server died): report it once."""
        spare = self.spares.pop(pid, None)
        if spare is not None:  # a spare died before use
            spare.close()
            return
        attempt = self.children.get(pid)
        if attempt is None:
            return
        if not attempt.closed:
            self._drain(attempt)
        del self.children[pid]
        self.kernels.attempt_ended(pid)  # its notebook kernel, if any, is stopped: never reused
        if attempt.recorded:
            self._report(attempt.workload, 0)
            return
        self._note_death(attempt, code)
        if attempt.record_error:
            self._report(attempt.workload, code or 1, attempt.record_error)
        elif code is None:
            self._report(attempt.workload, -1, "attempt process lost with its fork server")
        elif code < 0:
            self._report(attempt.workload, code, f"attempt process killed by signal {-code}")
        else:
            self._report(attempt.workload, code or 1, f"attempt process exited with code {code} "
                                                      "before reporting a result")

    def _note_death(self, attempt: _Attempt, code: int | None) -> None:
        """The last line of the attempt's log: why it died."""
        from nbflow.runtime.logs import death_reason, note_death

        if attempt.record_error:
            reason = attempt.record_error
        elif attempt.stopped:
            reason = "cleared externally (no longer running in the metadata database)"
        elif attempt.overdue:
            reason = (f"execution timeout after {attempt.workload.execution_timeout:g} s "
                      f"(killed: it ignored the timeout for 10 s more)")
        else:
            reason = death_reason(code)
        key = attempt.workload.key
        note_death(self.log_folder, key.dag_id, key.run_id, key.task_id, attempt.try_number, key.map_index, reason)

    def _drain(self, attempt: _Attempt) -> None:
        """Everything the ended process wrote is in its socket: read it all (its outcome may be there)."""
        if attempt.sock.fileno() >= 0:
            attempt.sock.setblocking(False)
            while True:
                try:
                    data = attempt.sock.recv(1 << 20)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                attempt.buffer += data
            self._handle_lines(attempt)
            self._forget_socket(attempt)

    def _report(self, workload: Workload, exit_code: int, message: str = "") -> None:
        self.send({"key": asdict(workload.key), "try_number": workload.try_number, "exit_code": exit_code,
                   "message": message})

    # -- keeping attempts honest --------------------------------------------------------------------

    def _heartbeat_children(self) -> None:
        """One heartbeat for every running attempt, at most every `task_heartbeat_sec`."""
        now = time.monotonic()
        if not self.children or now - self._last_beat < self.heartbeat:
            return
        self._last_beat = now
        from nbflow.store import session_scope
        from nbflow.store import ti_state
        try:
            with session_scope(self.sessions) as session:
                gone = [(pid, attempt) for pid, attempt in self.children.items()
                        if not ti_state.heartbeat_task(session, attempt.workload.key, try_number=attempt.try_number)
                        and not attempt.recorded and not attempt.stopped and attempt.try_number]
        except Exception as err:  # noqa: BLE001 - retried on the next beat
            print(f"nbflow worker: heartbeat failed: {err}", file=sys.stderr)
            return
        for pid, attempt in gone:  # cleared, or failed by someone else: this attempt no longer counts
            print(f"nbflow worker: {attempt.workload.key} try {attempt.try_number} is no longer running in the "
                  f"metadata database (cleared or ended elsewhere); stopping its process", file=sys.stderr)
            attempt.stopped = True
            process_tree.kill_tree(pid)  # its process group and every descendant, not the pid alone

    def _kill_overdue(self) -> None:
        """Backstop for execution_timeout: a child that ignored SIGALRM for 10 s more is killed."""
        now = time.monotonic()
        for pid, attempt in list(self.children.items()):
            timeout = attempt.workload.execution_timeout
            if timeout and now > attempt.started_at + timeout + 10 and not attempt.overdue:
                attempt.overdue = True
                process_tree.kill_tree(pid)

    def _on_term(self, signum: int, frame: object) -> None:
        self.stdin_open = False
        self.pending.clear()
        self._discard_spares()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nbflow-worker")
    parser.add_argument("--dags-folder", required=True, type=Path)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--executor", default="local", help="the executor this worker serves (local, sequential)")
    parser.add_argument("--no-followups", dest="followups", action="store_false",
                        help="never start downstream tasks itself: the scheduler hands over every attempt")
    args = parser.parse_args(argv)
    return Worker(args.dags_folder, args.parallelism, executor=args.executor, followups=args.followups).serve()


if __name__ == "__main__":
    sys.exit(main())
