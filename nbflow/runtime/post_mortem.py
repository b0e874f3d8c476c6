"""One ended attempt of a task instance, rebuilt from the metadata database for a person to step into.

`%dag debug` calls `post_mortem`: which run and try (the latest failure by default), the task copy
rendered with that run's context, the upstream values the attempt saw, the end of its log, and for a
notebook task the executed notebook of that attempt with its failing cell and injected parameters.
Nothing is written: the rebuilt `ti` reads XComs from the database and holds its own pushes.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import NbflowException, TaskNotFound
from nbflow.runtime.attempt import run_info_of
from nbflow.runtime.context import build_context
from nbflow.runtime.logs import attempt_log_path
from nbflow.runtime.run_info import DagRunInfo, TIKey
from nbflow.runtime.task_instance import RuntimeTaskInstance
from nbflow.runtime.task_runner import task_params
from nbflow.runtime.xcom_db import DbXComStore
from nbflow.store import runs as run_rows
from nbflow.store import session_scope
from nbflow.store import task_instances as ti_rows
from nbflow.store.ti_state import get_task_history
from nbflow.utils.masking import masker
from nbflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.baseoperator import BaseOperator
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.api import Environment
    from nbflow.store.rows import TaskInstanceRow

_FAILED = (TaskInstanceState.FAILED, TaskInstanceState.UP_FOR_RETRY)
_FAILED_MARK = "[nbflow] task failed: "
_ERROR_MARKER = "papermill-error-cell-tag"  # papermill.execute.ERROR_MARKER_TAG
_RUNS_SEARCHED = 50  # how far back the default run is looked for


@dataclass(frozen=True, slots=True)
class NotebookAttempt:
    """The executed notebook of one attempt of a notebook task, as far as it got."""

    path: Path
    exists: bool
    failing_cell: int | None = None  # index in the executed notebook, not counting papermill's error markers
    execution_count: int | None = None
    ename: str | None = None
    evalue: str | None = None
    failing_source: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)  # defaults overridden by injected values
    unreadable_parameters: tuple[str, ...] = ()  # assignments that are not literals


@dataclass(frozen=True, slots=True)
class PostMortem:
    """What one attempt had to work with, rebuilt: run, rendered task, context, upstream values, log."""

    key: TIKey
    try_number: int
    tries: int  # attempts the instance has had so far
    state: str | None  # the instance's state now
    attempt_state: str | None  # how this try ended, from the attempt history (None if unknown)
    run: DagRunInfo
    task: "BaseOperator"  # a copy rendered with `context`, as the attempt ran it
    context: dict[str, Any]
    upstream: dict[str, Any]  # upstream task id -> the value the attempt pulled (None when it had none)
    log_path: Path
    log_tail: tuple[str, ...]  # masked
    error: str | None
    render_error: str | None = None
    notebook: NotebookAttempt | None = None

    def __str__(self) -> str:
        return f"{self.key.dag_id}.{self.key.task_id}[{self.key.run_id}] try {self.try_number}"


def post_mortem(env: "Environment", dag: "DAG", task_id: str, *, run_id: str | None = None,
                try_number: int | None = None, map_index: int = -1, log_lines: int = 20) -> PostMortem:
    """Rebuild an attempt of `dag.task_id`: in `run_id` (default: the latest run where it failed, else the
    latest where it ran), try `try_number` (default: its latest). NbflowException naming what is missing."""
    task = task_of(dag, task_id)
    run_id = run_id or default_run(env, dag.dag_id, task_id, map_index=map_index)
    with session_scope(env.readers) as session:
        run_row = run_rows.get_dag_run(session, dag.dag_id, run_id)
        if run_row is None:
            raise NbflowException(f"DAG {dag.dag_id!r} has no run {run_id!r} (it may have been deleted); "
                                  f"`%dag debug {dag.dag_id} {task_id}` picks its latest failure")
        key = TIKey(dag.dag_id, task_id, run_id, map_index)
        row = ti_rows.get_task_instance(session, key)
        history = get_task_history(session, key) if row is not None else []
    row = _ran(row, dag.dag_id, task_id, run_id, map_index)
    tries = row.try_number
    wanted = tries if try_number is None else try_number
    if not 1 <= wanted <= tries:
        raise NbflowException(f"task {dag.dag_id}.{task_id} ran {tries} time(s) in run {run_id!r}; "
                              f"pick --try between 1 and {tries}")
    ended = {h.try_number: h.state for h in history}
    run = run_info_of(run_row)
    xcoms = DbXComStore(env.sessions, env.readers)
    work, context, render_error = _rendered(dag, task, run, map_index, wanted, row.max_tries, xcoms)
    ti = context["ti"]
    upstream = {up: ti.xcom_pull(task_ids=up) for up in sorted(task.upstream_task_ids)}
    path = attempt_log_path(env.config.log_folder, dag.dag_id, run_id, task_id, wanted, map_index)
    tail, error = _log_tail(path, log_lines)
    notebook = _notebook_attempt(env, work, context) if _is_notebook_task(work) else None
    return PostMortem(key=key, try_number=wanted, tries=tries, state=row.state,
                      attempt_state=ended.get(wanted, row.state if wanted == tries else None),
                      run=run, task=work, context=context, upstream=upstream, log_path=path, log_tail=tail,
                      error=error, render_error=render_error, notebook=notebook)


def default_run(env: "Environment", dag_id: str, task_id: str, *, map_index: int = -1) -> str:
    """The latest run in which the task failed (a try that failed counts), else the latest in which it ran."""
    ran: str | None = None
    with session_scope(env.readers) as session:
        runs = run_rows.list_dag_runs(session, dag_id, limit=_RUNS_SEARCHED)
        if not runs:
            raise NbflowException(f"DAG {dag_id!r} has no runs yet; run it first (`%dag run {dag_id}`)")
        for run in runs:
            key = TIKey(dag_id, task_id, run.run_id, map_index)
            row = ti_rows.get_task_instance(session, key)
            if row is None or row.try_number < 1:
                continue
            if row.state in _FAILED or any(h.state in _FAILED for h in get_task_history(session, key)):
                return run.run_id
            ran = ran or run.run_id
    if ran is None:
        raise NbflowException(f"task {dag_id}.{task_id} has not run in the latest {len(runs)} run(s) of "
                              f"{dag_id!r}; nothing to debug yet")
    return ran


def task_of(dag: "DAG", task_id: str) -> "BaseOperator":
    task = dag.task_dict.get(task_id)
    if task is None:
        raise TaskNotFound(f"DAG {dag.dag_id!r} has no task {task_id!r}; its tasks: "
                           f"{', '.join(sorted(dag.task_dict)) or 'none'}")
    return task


def _ran(row: "TaskInstanceRow | None", dag_id: str, task_id: str, run_id: str, map_index: int) -> "TaskInstanceRow":
    """The instance's row, once it is known to have had at least one attempt."""
    where = f"task {dag_id}.{task_id}" + (f" map index {map_index}" if map_index >= 0 else "")
    if row is None:
        raise NbflowException(f"{where} has no instance in run {run_id!r} (was it added after the run, or is "
                              f"it mapped? pass --map-index)")
    if row.try_number < 1:
        raise NbflowException(f"{where} never ran in run {run_id!r} (state {row.state or 'none'}); "
                              f"debug the task that stopped it")
    return row


def _rendered(dag: "DAG", task: "BaseOperator", run: DagRunInfo, map_index: int, try_number: int,
              max_tries: int, xcoms: DbXComStore) -> tuple["BaseOperator", dict[str, Any], str | None]:
    """The task copy an attempt runs, its context, and why rendering failed (the attempt failed the same way)."""
    from nbflow.runtime.expansion import expansion_of

    params = dag.params.validate(run.conf, where=f"DAG {dag.dag_id!r}")
    if task.is_mapped:
        if map_index < 0:
            raise NbflowException(f"task {dag.dag_id}.{task.task_id} is mapped; pass --map-index I")
        task = task.unmap(expansion_of(dag, task.task_id, run, params, xcoms)[map_index])
    ti = RuntimeTaskInstance(task=task, run=run, map_index=map_index, try_number=try_number, max_tries=max_tries,
                             xcoms=xcoms)
    context = build_context(task=task, run=run, ti=ti, params=params)
    work = task
    try:
        context["params"] = task_params(task, params, run.conf)
        work = task.prepare_for_execution()
        context["task"] = ti.task = work
        work.render_template_fields(context)
    except Exception as err:  # noqa: BLE001 - the attempt met the same error; the person should see it
        return work, context, f"{type(err).__name__}: {err}"
    return work, context, None


def _log_tail(path: Path, count: int) -> tuple[tuple[str, ...], str | None]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return (), None
    error = next((line[len(_FAILED_MARK):] for line in reversed(lines) if line.startswith(_FAILED_MARK)), None)
    return tuple(masker.redact(line) for line in lines[-count:]), masker.redact(error) if error else None


def _is_notebook_task(task: "BaseOperator") -> bool:
    from nbflow.operators.notebook import NotebookOperator
    return isinstance(task, NotebookOperator)


def _notebook_attempt(env: "Environment", task: Any, context: dict[str, Any]) -> NotebookAttempt:
    """Where the operator wrote this attempt's executed notebook, and what is in it."""
    config = env.config
    root = config.path("notebook", "output_folder") if config.get("notebook", "output_folder") \
        else config.home / "notebooks"
    path = root / Path(task.output_nb).expanduser() if task.output_nb else task.default_output(context, root)
    try:
        import nbformat
        nb = nbformat.read(str(path), as_version=4)
    except (OSError, ValueError):  # never written (the kernel did not start) or cut short
        return NotebookAttempt(path=path, exists=path.exists())
    parameters, unreadable = _parameters(nb)
    # Numbered as the attempt's log and error name cells: without papermill's error markers.
    cells = [c for c in nb.cells if _ERROR_MARKER not in c.get("metadata", {}).get("tags", [])]
    for index, cell in enumerate(cells):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if cell.cell_type == "code" and errors:
            return NotebookAttempt(path=path, exists=True, failing_cell=index,
                                   execution_count=cell.get("execution_count"), ename=errors[0].get("ename"),
                                   evalue=masker.redact(str(errors[0].get("evalue", ""))),
                                   failing_source=cell.source, parameters=parameters,
                                   unreadable_parameters=unreadable)
    return NotebookAttempt(path=path, exists=True, parameters=parameters, unreadable_parameters=unreadable)


def _parameters(nb: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The notebook's parameter values: its `parameters` cell, then papermill's `injected-parameters` cell.
    Read as literals, never executed: a default computed by code is named, not run."""
    values: dict[str, Any] = {}
    unreadable: list[str] = []
    for tag in ("parameters", "injected-parameters"):
        for cell in nb.cells:
            if cell.cell_type == "code" and tag in cell.get("metadata", {}).get("tags", []):
                _literal_assignments(cell.source, values, unreadable)
    return values, tuple(name for name in dict.fromkeys(unreadable) if name not in values)


def _literal_assignments(source: str, values: dict[str, Any], unreadable: list[str]) -> None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            try:
                values[target.id] = ast.literal_eval(node.value)  # type: ignore[union-attr,arg-type]
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                values.pop(target.id, None)
                unreadable.append(target.id)


__all__ = ["NotebookAttempt", "PostMortem", "default_run", "post_mortem", "task_of"]
