"""The local executor's warm worker: parse DAG files once, fork one child per attempt.

Protocol (JSON lines): stdin carries Workloads; stdout carries `{"ready": true}` once, then one
`{"key": ..., "try_number": ..., "exit_code": ...}` per ended child. When stdin closes (the
scheduler stopped or died), the worker starts nothing new, waits for its children — they record
their own results in the database — and exits.
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import sys
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

from nbflow.configuration import load_config
from nbflow.runtime.workload import Workload


def _preload() -> None:
    """Import what every attempt needs once, here, so forked children start with it (copy-on-write)."""
    import jinja2.nativetypes  # noqa: F401
    import jinja2.sandbox  # noqa: F401

    import nbflow.decorators  # noqa: F401 - operators and @task kinds
    import nbflow.runtime.attempt  # noqa: F401
    from nbflow.authoring.templating import make_template_env
    make_template_env(None).from_string("{{ 1 }}").render()


SPARES = 2  # processes forked ahead of need; each costs a few MB of copied pages while it waits


class Worker:
    def __init__(self, dags_folder: Path, parallelism: int) -> None:
        from nbflow.runtime.dagbag import DagBag
        from nbflow.store import make_engine, make_session_factory

        _preload()
        self.config = load_config()
        self.parallelism = parallelism
        self.dagbag = DagBag(dags_folder, import_timeout=self.config.getfloat("core", "dagbag_import_timeout"))
        self.engine = make_engine(self.config.sql_alchemy_conn)
        self.sessions = make_session_factory(self.engine)
        self.readers = make_session_factory(self.engine, read_only=True)
        self.log_folder = self.config.log_folder
        self.max_xcom_size = self.config.getint("core", "max_xcom_size")
        self.heartbeat = self.config.getfloat("scheduler", "task_heartbeat_sec", 2.0)
        self.pending: deque[Workload] = deque()
        self.children: dict[int, tuple[Workload, float]] = {}
        self.stdin_open = True
        self.out = sys.stdout
        self._buffer = ""
        self._followup_buffer = ""
        # Processes forked ahead of need: each has paid for fork, copy-on-write and its database
        # connection before a workload exists, then waits on its pipe for exactly one attempt.
        self.spares: dict[int, int] = {}  # pid -> write end of its workload pipe
        self.max_spares = min(SPARES, parallelism)
        self._last_beat = time.monotonic()
        self._stamps: dict[str, int | None] = {}
        self._warm_up()
        from nbflow.runtime.kernel_pool import WorkerKernels
        self.kernels = WorkerKernels(self.config.getint("notebook", "kernel_pool_size"),
                                     self.config.path("core", "notebooks_folder"))
        self.kernels.prestart(self.dagbag.dags.values())  # notebook tasks: kernels started ahead of need

    def _warm_up(self) -> None:
        """Compile the statements an attempt runs, and each DAG's template environment, before forking.

        SQLAlchemy caches compiled SQL per engine and Jinja builds environments lazily; done here once,
        every forked child inherits the result instead of paying for it on each attempt.
        """
        from nbflow.runtime.attempt import warm_up_statements
        self.dagbag.collect()
        for dag in self.dagbag.dags.values():
            dag.get_template_env()
        try:
            warm_up_statements(self.sessions)
        except Exception as err:  # noqa: BLE001 - only a speed-up; attempts work without it
            print(f"nbflow worker: warm-up skipped: {err}", file=sys.stderr)

    def send(self, message: dict) -> None:
        try:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):  # the scheduler is gone; children still record results
            pass

    def serve(self) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        selector = selectors.DefaultSelector()
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        selector.register(read_fd, selectors.EVENT_READ, "signal")
        # Children hand back the downstream work they queued (the mini-scheduler) through this pipe.
        self._followup_read, self._followup_write = os.pipe()
        os.set_blocking(self._followup_read, False)
        selector.register(self._followup_read, selectors.EVENT_READ, "followup")
        import gc
        gc.freeze()  # parsed DAGs and imports stay shared with the children instead of copied by gc
        self.send({"ready": True, "pid": os.getpid()})
        while self.stdin_open or self.children or (self.pending and self.stdin_open):
            for key, _ in selector.select(timeout=self._select_timeout()):
                if key.data == "stdin":
                    self._read_stdin(selector)
                elif key.data == "followup":
                    self._read_followups()
                else:
                    try:
                        os.read(read_fd, 4096)
                    except BlockingIOError:
                        pass
            self._reap()
            self._kill_overdue()
            self._heartbeat_children()
            while self.stdin_open and self.pending and len(self.children) < self.parallelism:
                self._fork(self.pending.popleft())
            self._ensure_spares()
            self.kernels.tick()
        self.kernels.close()
        return 0

    def _select_timeout(self) -> float | None:
        deadlines = [start + w.execution_timeout + 10 for w, start in self.children.values() if w.execution_timeout]
        if deadlines:
            return min(max(min(deadlines) - time.monotonic(), 0.05), self.heartbeat)
        return self.heartbeat if self.children else (0.5 if self.kernels.busy else None)

    def _read_followups(self) -> None:
        """Workloads children queued; run them first and tell the scheduler they are ours now."""
        try:
            data = os.read(self._followup_read, 65536)
        except BlockingIOError:
            return
        self._followup_buffer += data.decode()
        while "\n" in self._followup_buffer:
            line, self._followup_buffer = self._followup_buffer.split("\n", 1)
            if line.strip() and self.stdin_open:
                workload = Workload.from_json(line)
                self.send({"started": asdict(workload)})
                self.pending.appendleft(workload)

    def _read_stdin(self, selector: selectors.BaseSelector) -> None:
        data = os.read(sys.stdin.fileno(), 65536)
        if not data:
            self.stdin_open = False
            selector.unregister(sys.stdin.fileno())
            self.pending.clear()
            self._discard_spares()
            return
        self._buffer += data.decode()
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            if line.strip():
                self.pending.append(Workload.from_json(line))

    def _fork(self, workload: Workload) -> None:
        self._refresh_if_changed(workload)
        dag = self.dagbag.dags.get(workload.dag_id)
        kernel = self.kernels.take_for(dag.task_dict.get(workload.task_id) if dag is not None else None)
        if kernel is None and self.spares:
            pid, fd = self.spares.popitem()
            try:
                os.write(fd, (workload.to_json() + "\n").encode())
                os.close(fd)
                self.children[pid] = (workload, time.monotonic())
                return
            except OSError:  # the spare died; fork afresh below
                os.close(fd)
        pid = os.fork()
        if pid == 0:  # child: never returns
            code = 1
            try:
                self.kernels.hand_over(kernel)
                code = self._child(workload)
            except BaseException:  # noqa: BLE001 - the child must always leave through os._exit
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        self.children[pid] = (workload, time.monotonic())
        self.kernels.attempt_started(pid, kernel)

    def _refresh_if_changed(self, workload: Workload) -> None:
        """Re-parse when the workload's DAG file changed (one stat), or its DAG is unknown here."""
        try:
            stamp = os.stat(workload.fileloc).st_mtime_ns
        except OSError:
            stamp = None
        if workload.dag_id not in self.dagbag.dags or self._stamps.get(workload.fileloc) != stamp:
            if self.dagbag.refresh():
                self._discard_spares()  # they hold the DAGs as parsed before the change
            self._stamps[workload.fileloc] = stamp

    def _ensure_spares(self) -> None:
        want = self.max_spares if self.stdin_open else 0
        want = min(want, max(self.parallelism - len(self.children), 0))
        while len(self.spares) < want:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # spare: never returns
                code = 1
                try:
                    os.close(write_fd)
                    for fd in self.spares.values():
                        os.close(fd)
                    code = self._spare(read_fd)
                except BaseException:  # noqa: BLE001 - the child must always leave through os._exit
                    import traceback
                    traceback.print_exc()
                finally:
                    os._exit(code)
            os.close(read_fd)
            self.spares[pid] = write_fd

    def _discard_spares(self) -> None:
        for fd in self.spares.values():
            os.close(fd)  # end of file: the spare exits without running anything
        self.spares.clear()

    def _spare(self, read_fd: int) -> int:
        """Get ready (signals, connection, warm paths), then run the one workload the pipe brings."""
        from nbflow.runtime.attempt import warm_up_reads
        self._prepare_child()
        warm_up_reads(self.readers)
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(read_fd, 65536)
            if not chunk:
                return 0  # discarded before use
            data += chunk
        self.kernels.hand_over(None)  # as a freshly forked attempt without a pooled kernel
        return self._run_in_child(Workload.from_json(data.decode()))

    def _child(self, workload: Workload) -> int:
        self._prepare_child()
        return self._run_in_child(workload)

    def _prepare_child(self) -> None:
        from nbflow.store import dispose_after_fork

        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # task output goes to its log; fd 1 is the protocol pipe
        os.close(devnull)
        os.close(self._followup_read)
        dispose_after_fork(self.engine)

    def _run_in_child(self, workload: Workload) -> int:
        from nbflow.runtime.attempt import execute_workload

        dag = self.dagbag.dags.get(workload.dag_id)
        if dag is None:
            print(f"DAG {workload.dag_id!r} is not in {self.dagbag.dag_folder}", file=sys.stderr)
            return 4
        write_fd = self._followup_write

        def hand_back(ready: list[Workload]) -> None:
            for item in ready:  # one short line each: pipe writes under PIPE_BUF are atomic
                os.write(write_fd, (item.to_json() + "\n").encode())

        return execute_workload(workload, dag, session_factory=self.sessions, log_folder=self.log_folder,
                                max_xcom_size=self.max_xcom_size, read_session_factory=self.readers,
                                followups=hand_back)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            workload, _ = self.children.pop(pid, (None, 0.0))
            if workload is None:
                fd = self.spares.pop(pid, None)
                if fd is not None:  # a spare died before use
                    os.close(fd)
                continue
            self.kernels.attempt_ended(pid)  # its notebook kernel, if any, is stopped: never reused
            code = os.waitstatus_to_exitcode(status)
            message = f"attempt process killed by signal {-code}" if code < 0 else ""
            self.send({"key": asdict(workload.key), "try_number": workload.try_number, "exit_code": code,
                       "message": message})

    def _heartbeat_children(self) -> None:
        """One heartbeat for every running child, at most every `task_heartbeat_sec`."""
        now = time.monotonic()
        if not self.children or now - self._last_beat < self.heartbeat:
            return
        self._last_beat = now
        from nbflow.store import session_scope
        from nbflow.store import ti_state
        try:
            with session_scope(self.sessions) as session:
                for workload, _ in self.children.values():
                    ti_state.heartbeat_task(session, workload.key)
        except Exception as err:  # noqa: BLE001 - retried on the next beat
            print(f"nbflow worker: heartbeat failed: {err}", file=sys.stderr)

    def _kill_overdue(self) -> None:
        """Backstop for execution_timeout: a child that ignored SIGALRM for 10 s more is killed."""
        now = time.monotonic()
        for pid, (workload, start) in list(self.children.items()):
            if workload.execution_timeout and now > start + workload.execution_timeout + 10:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _on_term(self, signum: int, frame: object) -> None:
        self.stdin_open = False
        self.pending.clear()
        self._discard_spares()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nbflow-worker")
    parser.add_argument("--dags-folder", required=True, type=Path)
    parser.add_argument("--parallelism", type=int, default=4)
    args = parser.parse_args(argv)
    return Worker(args.dags_folder, args.parallelism).serve()


if __name__ == "__main__":
    sys.exit(main())
