"""What needs a DAG's user objects when the caller holds only its serialized form: expanding a mapped
task (the scheduler), checking a run's conf against the DAG's Params (`dags trigger`). The DAG file is
loaded in a forked child, never in the caller, and whatever it does there comes back as an error."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import NbflowException
from nbflow.runtime.dag_source import DagSource
from nbflow.runtime.parse_processes import run_in_child

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nbflow.runtime.run_info import DagRunInfo


def load_dag_in_child(source: DagSource, dag_id: str, timeout: float) -> Any:
    """The DAG `dag_id` from `source`, imported in the calling (child) process; NbflowException says why not."""
    from nbflow.runtime.dag_source import dags_from_cells
    from nbflow.runtime.dagbag import parse_file
    if source.kind == "cells":
        dags = dags_from_cells(source)
    else:
        from nbflow.utils.plugins import plugins_folder_on_path
        plugins_folder_on_path()  # the file may import a plugin module (a custom Timetable's)
        st = os.stat(source.location)
        parsed = parse_file(source.location, (st.st_mtime_ns, st.st_size), timeout=timeout)
        if parsed.errors and not parsed.dags:
            raise NbflowException(parsed.errors[0].splitlines()[0])
        dags = {dag.dag_id: dag for dag in parsed.dags}
    if dag_id not in dags:
        raise NbflowException(f"DAG {dag_id!r} is no longer defined in {source.location}")
    return dags[dag_id]


def run_info_to_dict(run: "DagRunInfo") -> dict[str, Any]:
    from dataclasses import asdict
    return {key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in asdict(run).items()}


def run_info_from_dict(data: dict[str, Any]) -> "DagRunInfo":
    from datetime import datetime

    from nbflow.runtime.run_info import DagRunInfo
    dates = ("logical_date", "data_interval_start", "data_interval_end", "start_date")
    return DagRunInfo(**{key: datetime.fromisoformat(value) if key in dates and value else value
                         for key, value in data.items()})


def _count(source: dict[str, Any], dag_id: str, task_id: str, run: dict[str, Any], timeout: float,
           sessions: "Callable[[], Session] | None" = None) -> int:
    """How many instances the mapped task expands to, its DAG loaded in this (child) process; without
    `sessions` (a spawned process) the configured database is opened here."""
    from nbflow.runtime.expansion import expansion_of
    from nbflow.runtime.xcom_db import DbXComStore
    if sessions is None:
        from nbflow.configuration import load_config
        from nbflow.runtime.environment import Environment
        sessions = Environment.from_config(load_config()).sessions
    dag = load_dag_in_child(DagSource.from_dict(source), dag_id, timeout)
    info = run_info_from_dict(run)
    params = dag.params.validate(info.conf, where=f"DAG {dag_id!r}")
    return len(expansion_of(dag, task_id, info, params, DbXComStore(sessions)))


def _params(source: dict[str, Any], dag_id: str, conf: dict[str, Any], timeout: float) -> str | None:
    return _params_problem(DagSource.from_dict(source), dag_id, conf, timeout)


def _markers(source: dict[str, Any], dag_id: str, run: dict[str, Any], task_ids: list[str],
             timeout: float) -> list[list[object]]:
    from nbflow.runtime.cross_dag_clear import marker_targets
    live = load_dag_in_child(DagSource.from_dict(source), dag_id, timeout)
    return [[m.task_id, m.external_dag_id, m.external_task_id, m.logical_date.isoformat(), m.recursion_depth]
            for m in marker_targets(live, run_info_from_dict(run), task_ids)]


#: What needs a DAG's user objects, by name, with JSON arguments: run in a forked child, or (from a
#: Jupyter kernel, never forked) in a spawned `python -m nbflow.runtime.expansion_process`.
JOBS: dict[str, Callable[..., Any]] = {"count": _count, "params": _params, "markers": _markers}


def run_job(job: str, arguments: dict[str, Any], *, deadline: float) -> Any:
    """`JOBS[job](**arguments)` in a child process killed after `deadline` s; NbflowException says why not."""
    from nbflow.runtime.dag_processor import in_kernel
    if in_kernel():
        result, error = _spawned(job, arguments, deadline)
    else:
        result, error = run_in_child(lambda: JOBS[job](**arguments), deadline + 1.0)
    if error is not None:
        raise NbflowException(error)
    return result


def count_mapped_instances(source: DagSource, dag_id: str, task_id: str, run: "DagRunInfo",
                           sessions: "Callable[[], Session]", *, timeout: float) -> int:
    """How many instances the mapped task `task_id` expands to in `run`; NbflowException says why not.
    (From a kernel the spawned child opens the configured database, which is `sessions`' own.)"""
    from nbflow.runtime.dag_processor import in_kernel
    arguments = {"source": source.to_dict(), "dag_id": dag_id, "task_id": task_id, "run": run_info_to_dict(run),
                 "timeout": timeout}
    if in_kernel():
        count = run_job("count", arguments, deadline=timeout)
    else:  # forked: the child reads XComs through the caller's database, its pooled connections dropped
        parent = os.getpid()

        def work() -> int:
            bind = getattr(sessions, "kw", {}).get("bind")
            if bind is not None and os.getpid() != parent:
                from nbflow.store import dispose_after_fork
                dispose_after_fork(bind)
            return _count(**arguments, sessions=sessions)

        count, error = run_in_child(work, timeout + 1.0)
        if error is not None:
            raise NbflowException(error)
    if not isinstance(count, int):
        raise NbflowException("no answer from the expanding process")
    return count


def _params_problem(source: DagSource, dag_id: str, conf: dict[str, Any], timeout: float) -> str | None:
    """Why `conf` fails the DAG's Params (None: it passes), the DAG loaded in the calling process."""
    from nbflow.exceptions import ParamValidationError
    dag = load_dag_in_child(source, dag_id, timeout)
    try:
        dag.params.validate(conf, where=f"DAG {dag_id!r}")
    except ParamValidationError as err:
        return str(err)
    return None


def _spawned(job: str, arguments: dict[str, Any], timeout: float) -> tuple[Any, str | None]:
    """`JOBS[job]` in a spawned `python -m nbflow.runtime.expansion_process`, killed after `timeout`:
    for a Jupyter kernel, which is never forked and must not import a DAG file of the dags folder itself."""
    import json
    import subprocess
    import sys
    request = json.dumps({"job": job, "arguments": arguments})
    try:
        done = subprocess.run([sys.executable, "-m", "nbflow.runtime.expansion_process"], input=request,
                              text=True, capture_output=True, timeout=timeout + 10.0, check=False)
    except subprocess.TimeoutExpired:
        return None, f"its DAG file took longer than {timeout:g} s (core.dagbag_import_timeout) and was killed"
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None, f"the process loading the DAG ended with exit code {done.returncode}"
    return answer.get("ok"), answer.get("error")


def check_params_in_child(source: DagSource, dag_id: str, conf: dict[str, Any], *, timeout: float) -> None:
    """ParamValidationError (or NbflowException) unless `conf` passes the DAG's Params, checked in a child
    (forked; spawned from a Jupyter kernel)."""
    try:
        problem = run_job("params", {"source": source.to_dict(), "dag_id": dag_id, "conf": conf, "timeout": timeout},
                          deadline=timeout)
    except NbflowException as err:
        raise NbflowException(f"DAG {dag_id!r}: cannot check the run's conf: {err}") from None
    if problem:
        from nbflow.exceptions import ParamValidationError
        raise ParamValidationError(problem)


def _main() -> None:
    """`python -m nbflow.runtime.expansion_process`: run the job given as JSON on stdin ({"job", "arguments"});
    print {"ok": result} or {"error": one line} as JSON."""
    import json
    import sys
    given = json.loads(sys.stdin.read())
    try:
        answer = {"ok": JOBS[given["job"]](**given["arguments"])}
    except Exception as err:  # noqa: BLE001 - reported to the caller as one line
        answer = {"error": f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"}
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    _main()
