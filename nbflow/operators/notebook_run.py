"""Run one parameterised notebook on a started kernel, as one notebook task's attempt.

Every output is appended to the attempt's log as it arrives; what the notebook `record()`s is kept
for the XCom; secrets the task or the kernel knows are masked in the log and in the executed copy;
that copy is saved whatever happens (success, a failing cell, a timeout, a dead kernel).

Execution is nbclient's, driven cell by cell the way papermill's engine does it (papermill's
per-cell metadata and error markers), with two differences: the kernel was started by someone else
(the pool), so attaching takes one `kernel_info` round trip instead of jupyter_client's
`wait_for_ready` (which always waits 0.2 s more); and the loop runs on a fresh event loop per
notebook, so a timeout that interrupts it leaves nothing behind for the next notebook.
"""
from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import nbformat
from jupyter_client.asynchronous import AsyncKernelClient
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from papermill.engines import NotebookExecutionManager
from papermill.execute import ERROR_ANCHOR_MSG, ERROR_MARKER_TAG, ERROR_MESSAGE_TEMPLATE

from nbflow.exceptions import KernelStartError, NbflowTaskTimeout
from nbflow.notebook import RECORD_MIME, SECRET_MIME
from nbflow.operators.notebook_kernels import LaunchedKernel, kernel_is_alive
from nbflow.utils.masking import masker
from nbflow.utils.serialization import deserialize

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_OUTPUT_MESSAGES = {"stream", "display_data", "update_display_data", "execute_result", "error"}
# Set by ipykernel for itself at start-up; the task's environment must not remove them.
_KERNEL_OWN_ENV = ("JPY_", "MPLBACKEND", "PYDEVD_")


@dataclass(frozen=True, slots=True)
class CellFailure:
    """The first cell that raised: where (index in the executed notebook, In [n]) and what."""

    cell_index: int
    execution_count: int | None
    ename: str
    evalue: str


class DeadlineReached(Exception):
    """settings.deadline passed before the kernel answered."""


@dataclass(frozen=True, slots=True)
class RunSettings:
    output_path: Path
    cwd: str
    env: dict[str, str]
    log: TextIO
    cell_timeout: float | None = None
    deadline: float | None = None  # time.monotonic() by which the whole notebook must end
    allow_errors: bool = False
    start_timeout: float = 60.0
    autosave_every: float = 10.0


@dataclass
class NotebookResult:
    nb: NotebookNode
    records: dict[str, Any] = field(default_factory=dict)
    failure: CellFailure | None = None
    errors: list[CellFailure] = field(default_factory=list)  # every failing cell (several with allow_errors)
    deadline_reached: bool = False  # the failure is the settings' deadline (execution_timeout), not a cell error


def run_notebook(nb: NotebookNode, kernel: LaunchedKernel, settings: RunSettings,
                 alive: Callable[[], bool] | None = None) -> NotebookResult:
    """Execute `nb` (already parameterised) on `kernel`; save it to settings.output_path in any case.

    A failing cell is reported in the result, not raised; a timeout or an interrupted run raises after
    the executed copy is saved.
    """
    client = _TaskNotebookClient(nb, kernel, settings, alive or (lambda: kernel_is_alive(kernel.pid)))
    try:
        _drive(client.run_all, on_error=client.mark_interrupted)
    except NbflowTaskTimeout as err:  # the runner's alarm, a backstop for the deadline: say where it struck
        at = client.interrupted_at
        where = f"; the notebook was running cell {at[0]} (In [{at[1]}])" if at else ""
        raise NbflowTaskTimeout(f"{err}{where}; the executed notebook is {settings.output_path}") from None
    finally:
        client.finish()
    return NotebookResult(nb=client.nb, records=client.records, failure=client.failures[0] if client.failures
                          else None, errors=client.failures, deadline_reached=client.deadline_reached)


def warm_up() -> None:
    """Do once, in a process that forks notebook attempts, what each would otherwise do first: nbformat
    compiles its JSON schema validator (~35 ms) on the first notebook it reads or writes."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.reads(nbformat.writes(nb), as_version=4)


def _drive(coroutine: Callable[[], Any], on_error: Callable[[BaseException], None]) -> Any:
    """Run a coroutine on a fresh event loop, in this thread unless one already runs a loop (a kernel)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_fresh_loop(coroutine, on_error)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = _run_fresh_loop(coroutine, on_error)
        except BaseException as err:  # noqa: BLE001 - handed back to the calling thread
            box["error"] = err

    thread = threading.Thread(target=target, name="nbflow-notebook", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _run_fresh_loop(coroutine: Callable[[], Any], on_error: Callable[[BaseException], None]) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine())
    except BaseException as err:
        on_error(err)  # before the cancellations below make nbclient report a dead kernel instead
        raise
    finally:
        # A timeout (SIGALRM) can stop the loop mid-cell: cancel what still waits on the kernel's sockets.
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            try:
                loop.run_until_complete(asyncio.wait(pending, timeout=2))
            except BaseException:  # noqa: BLE001 - best effort while already failing
                pass
        loop.close()


class _AttachedKernelClient(AsyncKernelClient):
    """A client for a kernel this process did not start: alive means its process still runs."""

    alive_check: Callable[[], bool] = staticmethod(lambda: True)

    async def is_alive(self) -> bool:  # type: ignore[override]
        return self.alive_check()


class _AttachedKernel:
    """The part of a KernelManager nbclient uses when it did not start the kernel itself."""

    has_kernel = True

    def __init__(self, kernel: LaunchedKernel, alive: Callable[[], bool]) -> None:
        self.kernel = kernel
        self.kernel_name = kernel.kernel_name
        self.alive = alive

    def client(self) -> _AttachedKernelClient:
        client = _AttachedKernelClient(connection_file=self.kernel.connection_file)
        client.load_connection_file()
        client.alive_check = self.alive
        return client

    async def is_alive(self) -> bool:
        return self.alive()

    async def interrupt_kernel(self) -> None:
        os.kill(self.kernel.pid, signal.SIGINT)


class _SavedRun(NotebookExecutionManager):
    """papermill's per-cell bookkeeping, saving at most every `autosave_every` s (and at the end), masked."""

    def __init__(self, nb: NotebookNode, output_path: Path, autosave_every: float) -> None:
        super().__init__(nb, output_path=str(output_path), progress_bar=False, autosave_cell_every=autosave_every)

    def save(self, **kwargs: Any) -> None:
        if not kwargs.get("force") and (self.now() - self.last_save_time).total_seconds() < self.autosave_cell_every:
            return
        write_masked(self.nb, Path(self.output_path))
        self.last_save_time = self.now()


def write_masked(nb: NotebookNode, path: Path) -> None:
    """Write the notebook atomically, every secret the masker knows replaced in sources, outputs and metadata.

    Outputs were masked as they arrived, but a secret registered later (the kernel read a variable,
    a parameter was rendered) is hidden again here; the injected parameters cell may hold one too.
    """
    cells = [_masked_cell(cell) for cell in nb.cells]
    masked = nbformat.from_dict({**nb, "metadata": masker.redact_value(dict(nb.metadata)), "cells": cells})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(nbformat.writes(masked), encoding="utf-8")
    os.replace(partial, path)


def _masked_cell(cell: Any) -> dict[str, Any]:
    masked = {**cell, "source": masker.redact(cell.get("source", ""))}
    if cell.get("outputs"):
        masked["outputs"] = masker.redact_value(list(cell["outputs"]))
    return masked


class _Progress:
    """Appends what the notebook does to the attempt's log, as it happens."""

    def __init__(self, log: TextIO) -> None:
        self.log = log
        self.at_line_start = True

    def write(self, text: str) -> None:
        if text:
            self.log.write(text)
            self.at_line_start = text.endswith("\n")

    def line(self, text: str) -> None:
        self.write(("" if self.at_line_start else "\n") + text + "\n")

    def output(self, output: NotebookNode) -> None:
        kind = output.get("output_type")
        if kind == "stream":
            self.write(output.get("text", ""))
        elif kind == "error":
            trace = "\n".join(_ANSI.sub("", line) for line in output.get("traceback") or [])
            self.line(trace or f"{output.get('ename')}: {output.get('evalue')}")
        elif kind in ("execute_result", "display_data"):
            data = output.get("data") or {}
            text = data.get("text/markdown") or data.get("text/plain")
            if kind == "execute_result":
                self.line(f"Out[{output.get('execution_count')}]: {text if text is not None else ''}".rstrip())
            elif text is not None:
                self.line(text)
            else:
                self.line(f"<{', '.join(sorted(data)) or 'empty display'}>")


class _TaskNotebookClient(NotebookClient):
    """nbclient on a kernel someone else started: attach, prepare, run cells papermill-style, log as it goes."""

    def __init__(self, nb: NotebookNode, kernel: LaunchedKernel, settings: RunSettings,
                 alive: Callable[[], bool]) -> None:
        super().__init__(nb, km=_AttachedKernel(kernel, alive), kernel_name=kernel.kernel_name,
                         allow_errors=settings.allow_errors, timeout=None, startup_timeout=int(settings.start_timeout),
                         interrupt_on_timeout=False, raise_on_iopub_timeout=False, record_timing=True)
        self.timeout_func = self._cell_timeout
        self.kernel = kernel
        self.settings = settings
        self.alive = alive
        self.progress = _Progress(settings.log)
        self.run_record = _SavedRun(self.nb, settings.output_path, settings.autosave_every)
        self.records: dict[str, Any] = {}
        self.failures: list[CellFailure] = []
        self.current_cell: int | None = None
        self.interrupted = False
        self.deadline_reached = False
        self.interrupted_at: tuple[int, int] | None = None
        self.language_info: dict[str, Any] | None = None

    # -- attaching to a started kernel ------------------------------------------------------
    async def run_all(self) -> None:
        self.reset_execution_trackers()
        self.run_record.notebook_start()
        waited = time.monotonic()
        self.kc = await self._attach()
        self.progress.line(f"[nbflow] kernel ready after {time.monotonic() - waited:.3f} s")
        try:
            await self._prepare_kernel()
            for index, cell in enumerate(self.nb.cells):
                if not await self._run_cell(index, cell):
                    break
            self.set_widgets_metadata()
        finally:
            self.kc.stop_channels()

    async def _attach(self) -> _AttachedKernelClient:
        """Connect and wait until the kernel answers `kernel_info` on shell and on iopub.

        The iopub answer proves our subscription is live (PUB drops what is sent before it is); a
        round without it is repeated, as jupyter_client's wait_for_ready does, minus its 0.2 s drain.
        """
        assert self.km is not None
        client = self.km.client()
        client.start_channels(hb=False, stdin=False)
        deadline = time.monotonic() + self.settings.start_timeout
        if self.settings.deadline is not None and self.settings.deadline < deadline:
            deadline = self.settings.deadline
        sent: set[str] = set()
        reply: dict[str, Any] | None = None
        seen_iopub = False
        while True:
            sent.add(client.kernel_info())
            # A round lasts until the kernel answers on shell (it may still be starting), then 50 ms more for
            # the iopub side; a status missed because our subscription was not live yet means another round.
            round_end = time.monotonic() + (0.05 if reply else 0.5)
            while time.monotonic() < round_end:
                if not self.alive():
                    client.stop_channels()
                    raise KernelStartError(f"kernel {self.kernel.kernel_name!r} (pid {self.kernel.pid}) exited "
                                           f"before it was ready{_tail(self.kernel)}")
                while reply is None and await client.shell_channel.msg_ready():
                    msg = await client.get_shell_msg(timeout=0)
                    if msg["parent_header"].get("msg_id") in sent:
                        reply = msg
                        round_end = min(round_end, time.monotonic() + 0.05)
                try:
                    msg = await client.get_iopub_msg(timeout=0.01)
                    seen_iopub = seen_iopub or msg["parent_header"].get("msg_id") in sent
                except queue.Empty:
                    pass
                if reply is not None and seen_iopub:
                    self.language_info = reply["content"].get("language_info")
                    client.allow_stdin = False
                    return client
            if time.monotonic() > deadline:
                client.stop_channels()
                if deadline == self.settings.deadline:
                    raise DeadlineReached(f"kernel {self.kernel.kernel_name!r} did not answer in time")
                raise KernelStartError(f"kernel {self.kernel.kernel_name!r} (pid {self.kernel.pid}) did not answer "
                                       f"within {self.settings.start_timeout:g} s{_tail(self.kernel)}")

    async def _prepare_kernel(self) -> None:
        """Give a Python kernel the task's working directory and environment (it may have started long
        before, from another directory), and have it report the secrets it learns. Leaves no names."""
        if self.language_info:
            self.nb.metadata["language_info"] = self.language_info
        if (self.language_info or {}).get("name", "python") != "python":
            return
        code = (
            "def __nbflow_prepare(cwd, env, keep):\n"
            "    import os\n"
            "    own = {k: v for k, v in os.environ.items() if k.startswith(keep)}\n"
            "    os.environ.clear(); os.environ.update(env); os.environ.update(own); os.chdir(cwd)\n"
            "    try:\n"
            "        import nbflow.notebook\n"
            "        nbflow.notebook._report_secrets_to_task()\n"
            "    except Exception:\n"
            "        pass\n"
            f"__nbflow_prepare({json.dumps(self.settings.cwd)}, {json.dumps(self.settings.env)}, "
            f"{_KERNEL_OWN_ENV!r})\n"
            "del __nbflow_prepare\n"
        )
        assert self.kc is not None
        msg_id = self.kc.execute(code, silent=True, store_history=False)
        reply = await self.async_wait_for_reply(msg_id)
        content = (reply or {}).get("content", {})
        if content.get("status") != "ok":
            raise KernelStartError(f"could not prepare the kernel: {content.get('ename')}: {content.get('evalue')}")

    # -- running cells ------------------------------------------------------------------------
    async def _run_cell(self, index: int, cell: NotebookNode) -> bool:
        """Run one cell; False when the notebook must stop here."""
        self.current_cell = index
        if cell.cell_type == "code" and cell.source.strip():
            tags = cell.metadata.get("tags", [])
            label = " injected-parameters" if "injected-parameters" in tags else (
                " parameters" if "parameters" in tags else "")
            self.progress.line(f"[nbflow] cell {index} (In [{self.code_cells_executed + 1}]){label}")
        self.run_record.cell_start(cell, index)
        try:
            await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1)
        except CellExecutionError:
            self.run_record.cell_exception(self.nb.cells[index], cell_index=index)
            return False
        except CellTimeoutError:
            deadline = self.settings.deadline
            if deadline is not None and time.monotonic() >= deadline - 0.05:
                self.deadline_reached = True
                self._fail_cell(index, "CellTimeoutError", "the notebook reached its execution_timeout in this cell")
            else:
                self._fail_cell(index, "CellTimeoutError", f"the cell ran longer than {self.settings.cell_timeout:g} "
                                f"s (cell_timeout)")
            return False
        except DeadKernelError:
            if not self.interrupted:  # nbclient says so too when the run is cancelled from outside
                self._fail_cell(index, "DeadKernelError", "the kernel died while running this cell")
            return False
        finally:
            self.run_record.cell_complete(self.nb.cells[index], cell_index=index)
            self.current_cell = None
        return True

    def _cell_timeout(self, cell: NotebookNode | None) -> float | None:
        limits = [t for t in (self.settings.cell_timeout,) if t]
        if self.settings.deadline is not None:
            limits.append(max(self.settings.deadline - time.monotonic(), 0.01))
        return min(limits) if limits else None

    async def _check_raise_for_error(self, cell: NotebookNode, cell_index: int,
                                     exec_reply: dict[str, Any] | None) -> None:
        content = (exec_reply or {}).get("content", {})
        if content.get("status") == "error":
            ename, evalue = content.get("ename", ""), content.get("evalue", "")
            if ename == "SystemExit" and evalue in ("", "0"):  # papermill: sys.exit(0) ends the notebook early
                raise CellExecutionError("", ename, evalue)
            if "raises-exception" not in cell.metadata.get("tags", []):
                self.failures.append(CellFailure(cell_index, cell.get("execution_count"), ename, evalue))
        await super()._check_raise_for_error(cell, cell_index, exec_reply)

    def _fail_cell(self, index: int, ename: str, evalue: str) -> None:
        """Record a failure nbclient raised rather than reported, as an error output of the cell."""
        cell = self.nb.cells[index]
        output = nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
        cell.setdefault("outputs", []).append(output)
        self.progress.output(output)
        self.run_record.cell_exception(cell, cell_index=index)
        if not any(f.cell_index == index for f in self.failures):
            self.failures.append(CellFailure(index, cell.get("execution_count"), ename, evalue))

    def process_message(self, msg: dict[str, Any], cell: NotebookNode, cell_index: int) -> NotebookNode | None:
        msg_type = msg["msg_type"]
        if msg_type in _OUTPUT_MESSAGES:
            data = msg["content"].get("data") or {}
            if SECRET_MIME in data:  # never stored, never logged: only taught to the masker
                masker.add(data[SECRET_MIME].get("value"))
                return None
            if RECORD_MIME in data:
                recorded = data[RECORD_MIME]
                self.records[recorded["name"]] = deserialize(json.dumps(recorded.get("value")))
            msg = {**msg, "content": masker.redact_value(msg["content"])}
        output = super().process_message(msg, cell, cell_index)
        if output is not None and msg_type != "update_display_data":
            self.progress.output(output)
        self.run_record.autosave_cell()
        return output

    # -- ending -------------------------------------------------------------------------------
    def mark_interrupted(self, err: BaseException) -> None:
        """The run was stopped from outside (execution_timeout, Ctrl-C): say so in the cell it stopped."""
        index, self.interrupted = self.current_cell, True
        if index is not None:
            self.interrupted_at = (index, self.code_cells_executed)
            self._fail_cell(index, type(err).__name__, str(err) or "interrupted")

    def finish(self) -> None:
        """Final metadata, papermill's error markers when a cell failed, and the last (forced) save."""
        try:
            self.run_record.notebook_complete()
        except Exception:  # noqa: BLE001 - the save below matters more than the bookkeeping
            pass
        if self.failures and not self.settings.allow_errors:
            add_error_markers(self.nb, self.failures[0])
        write_masked(self.nb, self.settings.output_path)


def add_error_markers(nb: NotebookNode, failure: CellFailure) -> None:
    """papermill's convention: a red note at the top linking to an anchor just above the failing cell."""
    top = nbformat.v4.new_markdown_cell(ERROR_MESSAGE_TEMPLATE % str(failure.execution_count))
    top.metadata["tags"] = [ERROR_MARKER_TAG]
    anchor = nbformat.v4.new_markdown_cell(ERROR_ANCHOR_MSG)
    anchor.metadata["tags"] = [ERROR_MARKER_TAG]
    nb.cells.insert(failure.cell_index, anchor)
    nb.cells.insert(0, top)


def _tail(kernel: LaunchedKernel) -> str:
    tail = kernel.stderr_tail()
    return f"; its stderr ends with:\n{tail}" if tail else ""
