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
        st = os.stat(source.location)
        parsed = parse_file(source.location, (st.st_mtime_ns, st.st_size), timeout=timeout)
        if parsed.errors and not parsed.dags:
            raise NbflowException(parsed.errors[0].splitlines()[0])
        dags = {dag.dag_id: dag for dag in parsed.dags}
    if dag_id not in dags:
        raise NbflowException(f"DAG {dag_id!r} is no longer defined in {source.location}")
    return dags[dag_id]


def count_mapped_instances(source: DagSource, dag_id: str, task_id: str, run: "DagRunInfo",
                           sessions: "Callable[[], Session]", *, timeout: float) -> int:
    """How many instances the mapped task `task_id` expands to in `run`; NbflowException says why not."""

    parent = os.getpid()

    def work() -> int:
        bind = getattr(sessions, "kw", {}).get("bind")
        if bind is not None and os.getpid() != parent:  # in the forked child (a kernel runs this itself)
            from nbflow.store import dispose_after_fork
            dispose_after_fork(bind)
        from nbflow.runtime.expansion import expansion_of
        from nbflow.runtime.xcom_db import DbXComStore
        dag = load_dag_in_child(source, dag_id, timeout)
        params = dag.params.validate(run.conf, where=f"DAG {dag_id!r}")
        return len(expansion_of(dag, task_id, run, params, DbXComStore(sessions)))

    count, error = run_in_child(work, timeout + 1.0)
    if error is not None or not isinstance(count, int):
        raise NbflowException(error or "no answer from the expanding process")
    return count


def check_params_in_child(source: DagSource, dag_id: str, conf: dict[str, Any], *, timeout: float) -> None:
    """ParamValidationError (or NbflowException) unless `conf` passes the DAG's Params, checked in a child."""

    def work() -> str | None:
        from nbflow.exceptions import ParamValidationError
        dag = load_dag_in_child(source, dag_id, timeout)
        try:
            dag.params.validate(conf, where=f"DAG {dag_id!r}")
        except ParamValidationError as err:
            return str(err)
        return None

    problem, error = run_in_child(work, timeout + 1.0)
    if error is not None:
        raise NbflowException(f"DAG {dag_id!r}: cannot check the run's conf: {error}")
    if problem:
        from nbflow.exceptions import ParamValidationError
        raise ParamValidationError(problem)
