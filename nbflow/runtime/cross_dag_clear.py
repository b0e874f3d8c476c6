"""Clearing across DAGs: a cleared ExternalTaskMarker also clears its target task in the other DAG.

As in Airflow: the target task and everything downstream of it, in the other DAG's run at the
marker's rendered `logical_date`; markers cleared there reach further, and a chain deeper than
the first marker's `recursion_depth` (a cycle, or too much) is an error that clears nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from nbflow.exceptions import NbflowException
from nbflow.runtime.context import build_context
from nbflow.runtime.task_instance import RuntimeTaskInstance
from nbflow.runtime.xcom import MemoryXComStore
from nbflow.sensors.external_task import ExternalTaskMarker
from nbflow.utils.timezone import coerce_datetime

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nbflow.authoring.dag import DAG
    from nbflow.runtime.run_info import DagRunInfo
    from nbflow.runtime.serialized_dag import SerializedDag


@dataclass(frozen=True, slots=True)
class ClearTarget:
    """Tasks of one run of one DAG to clear (with their downstream tasks)."""

    dag_id: str
    run_id: str
    task_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MarkerTarget:
    """A cleared ExternalTaskMarker, rendered: which task of which DAG's run (by logical date) it reaches."""

    task_id: str
    external_dag_id: str
    external_task_id: str
    logical_date: datetime
    recursion_depth: int


def marker_targets(dag: "DAG", run: "DagRunInfo", task_ids: list[str]) -> list[MarkerTarget]:
    """The markers among `task_ids`, rendered against `run` (runs the DAG's templates: its code)."""
    found = []
    for task_id in task_ids:
        task = dag.task_dict.get(task_id)
        if not isinstance(task, ExternalTaskMarker):
            continue
        work = task.prepare_for_execution()
        ti = RuntimeTaskInstance(task=work, run=run, map_index=-1, try_number=0, max_tries=0, xcoms=MemoryXComStore())
        context = build_context(task=work, run=run, ti=ti, params=dict(run.conf))
        work.render_template_fields(context)
        where = f"ExternalTaskMarker {dag.dag_id}.{task_id} logical_date"
        found.append(MarkerTarget(task_id, str(work.external_dag_id), str(work.external_task_id),
                                  coerce_datetime(work.logical_date, where=where), work.recursion_depth))
    return found


def marker_targets_of(dag: "DAG | SerializedDag", run: "DagRunInfo", task_ids: list[str], *,
                      timeout: float) -> list[MarkerTarget]:
    """As `marker_targets`; for a serialized DAG the markers are rendered in a child process that loads
    the DAG's file (nothing is loaded when none of `task_ids` is a marker)."""
    from nbflow.runtime.serialized_dag import SerializedDag
    if not isinstance(dag, SerializedDag):
        return marker_targets(dag, run, task_ids)
    if not any(dag.task_dict[task_id].is_external_marker for task_id in task_ids if task_id in dag.task_dict):
        return []
    from nbflow.runtime.expansion_process import run_info_to_dict, run_job
    try:
        rows = run_job("markers", {"source": dag.source.to_dict(), "dag_id": dag.dag_id, "run": run_info_to_dict(run),
                                   "task_ids": list(task_ids), "timeout": timeout}, deadline=timeout)
    except NbflowException as err:
        raise NbflowException(f"DAG {dag.dag_id!r}: cannot render its ExternalTaskMarkers: {err}") from None
    if not isinstance(rows, list):
        raise NbflowException(f"DAG {dag.dag_id!r}: cannot render its ExternalTaskMarkers: no answer from the "
                              f"rendering process")
    return [MarkerTarget(str(t), str(d), str(e), datetime.fromisoformat(str(when)), int(str(depth)))
            for t, d, e, when, depth in rows]


def external_clears(session: "Session", get_dag: "Callable[[str], DAG | SerializedDag]", dag: "DAG | SerializedDag",
                    run: "DagRunInfo", task_ids: list[str], depth: int = 1, limit: int | None = None, *,
                    markers: "Callable[..., list[MarkerTarget]]" = marker_targets) -> list[ClearTarget]:
    """Every (DAG, run, tasks) that clearing `task_ids` of `run` reaches through markers, deepest last.

    `get_dag` finds the other DAGs (DagNotFound names one that is missing), `markers` renders the markers
    among the cleared tasks; nothing is cleared here.
    """
    from nbflow.runtime.attempt import run_info_of
    from nbflow.store import runs as run_rows
    targets: list[ClearTarget] = []
    for marker in markers(dag, run, task_ids):
        bound = limit if limit is not None else marker.recursion_depth
        if depth > bound:
            raise NbflowException(f"maximum recursion depth {bound} reached for ExternalTaskMarker "
                                  f"{dag.dag_id}.{marker.task_id}; it clears too many tasks, or the markers form a "
                                  f"cycle; nothing was cleared")
        external = get_dag(marker.external_dag_id)
        external.get_task(marker.external_task_id)
        runs = [r for r in run_rows.list_dag_runs(session, external.dag_id, limit=None)
                if r.logical_date == marker.logical_date]
        for row in runs:
            selected = sorted(external.partial_subset([marker.external_task_id], include_downstream=True))
            targets.append(ClearTarget(external.dag_id, row.run_id, tuple(selected)))
            targets.extend(external_clears(session, get_dag, external, run_info_of(row), selected, depth + 1, bound,
                                           markers=markers))
    return targets
