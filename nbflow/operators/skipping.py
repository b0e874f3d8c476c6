"""Telling the runtime which downstream tasks to skip (branches and short-circuits)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nbflow.exceptions import NbflowException


def expand_branch_ids(task: Any, branch_ids: Iterable[str]) -> set[str]:
    """Branch targets as task ids: a task group id stands for the group's root tasks."""
    dag = task.dag
    groups = {g.group_id: g for g in dag.task_group.iter_groups()}
    chosen: set[str] = set()
    for branch in branch_ids:
        if branch in dag.task_dict:
            chosen.add(branch)
        elif branch in groups:
            chosen.update(t.task_id for t in groups[branch].roots)
        else:
            raise NbflowException(f"task {task.task_id!r}: branch {branch!r} is not a task or task group of DAG "
                                  f"{dag.dag_id!r}")
    return chosen


def skip_all_except(task: Any, ti: Any, branch_ids: str | Iterable[str] | None) -> None:
    """Skip the direct downstream tasks that are not among the followed branches."""
    if branch_ids is None:
        branch_ids = []
    elif isinstance(branch_ids, str):
        branch_ids = [branch_ids]
    chosen = expand_branch_ids(task, branch_ids)
    not_direct = chosen - task.downstream_task_ids
    if not_direct:
        raise NbflowException(f"task {task.task_id!r}: branch(es) {', '.join(sorted(not_direct))} are not directly "
                              f"downstream; a branch must name a direct downstream task or group")
    ti.skip(sorted(task.downstream_task_ids - chosen))


def skip_downstream(task: Any, ti: Any, *, all_downstream: bool) -> None:
    """Skip direct downstream tasks, or every task downstream (ignoring their trigger rules)."""
    ids = task.get_flat_relative_ids(upstream=False) if all_downstream else task.downstream_task_ids
    ti.skip(sorted(ids), ignore_trigger_rules=all_downstream)
