"""What a mapped task expands to, resolved from its upstream XComs.

One resolution for the scheduler (how many instances to create), `dags test` (the same, in
process) and the attempt process (one instance's arguments), so they cannot disagree on it.
Imports no SQLAlchemy: the attempt process's side of nbflow uses it too.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbflow.runtime.run_info import DagRunInfo
from nbflow.runtime.task_instance import RuntimeTaskInstance
from nbflow.runtime.xcom import XComStore

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG


def resolution_context(dag: "DAG", task_id: str, run: DagRunInfo, params: dict[str, Any],
                       xcoms: XComStore) -> dict[str, Any]:
    """The little of a task context that resolving mapped arguments (XComArgs, params) reads."""
    task = dag.task_dict[task_id]
    ti = RuntimeTaskInstance(task=task, run=run, map_index=-1, try_number=1, max_tries=0, xcoms=xcoms)
    return {"ti": ti, "params": params, "dag_run": run, "run_id": run.run_id}


def expansion_of(dag: "DAG", task_id: str, run: DagRunInfo, params: dict[str, Any],
                 xcoms: XComStore) -> list[dict[str, Any]]:
    """Each instance's mapped keyword arguments, by map index; NbflowException when they cannot be resolved."""
    return dag.task_dict[task_id].expansion(resolution_context(dag, task_id, run, params, xcoms))
