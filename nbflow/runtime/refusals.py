"""Why a worker cannot run an attempt whose DAG file no longer loads: one line for the attempt's log.

The DAG processor keeps a broken file's DAGs as last stored, so the scheduler goes on queuing their
tasks; a worker that did not load that file while it was good has nothing to run. Such an attempt is a
real failed try (as Airflow's "DAG not found" in its worker), and its log says why in one line naming
the file, with the error the DAG processor stored for it when there is one.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nbflow.authoring.dag import DAG
    from nbflow.runtime.workload import Workload


def why_not_loadable(workload: "Workload", dag: "DAG | None", *, sessions: "Callable[[], Session]",
                     local_errors: Mapping[str, str]) -> str | None:
    """None when `dag` has the workload's task; else why not, in one line naming the DAG file.

    The error the DAG processor stored for the file comes first (it parsed the file in a child and
    saw how it failed: exception, exit code, signal, timeout); `local_errors` (this process's own
    parse, by file) is the fallback.
    """
    where = workload.fileloc
    if dag is not None:
        if workload.task_id in dag.task_dict:
            return None
        return (f"task {workload.task_id!r} is no longer in DAG {workload.dag_id!r} as {where} defines it now; "
                f"restore the task or clear the run")
    error = _stored_error(sessions, where) or local_errors.get(where)
    if error:
        first = error.strip().splitlines()[0]
        named = first if where in first else f"{where}: {first}"
        return f"DAG {workload.dag_id!r} could not be loaded: {named}; fix the file, then clear the task"
    return (f"DAG {workload.dag_id!r} is no longer defined in {where}; restore it there, "
            f"or `nbflow dags list-import-errors` says why the file fails")


def _stored_error(sessions: "Callable[[], Session]", path: str) -> str | None:
    from nbflow.store import serialized_dags, session_scope
    try:
        with session_scope(sessions) as session:
            return serialized_dags.import_error_of(session, path)
    except SQLAlchemyError:  # no table (a DagBag-fed scheduler): this process's own parse says it
        return None


__all__ = ["why_not_loadable"]
