"""The mini-scheduler: an attempt that just ended queues the downstream tasks it made ready.

Airflow's "schedule after task execution": rather than wait for the scheduler's next turn (a
pipe hop, a wake-up and a read of the whole run), the ending attempt looks at its direct
downstream tasks in the same transaction that records its result and queues those whose trigger
rule now says run. The scheduler stays the authority: every change is a compare-and-set from "no
state", and anything not simple (mapped tasks, depends_on_past, non-default pools, a full DAG)
is left to it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from nbflow.runtime.dag_source import source_of
from nbflow.runtime.priority import priority_weights
from nbflow.runtime.readiness import EARLY_RULES, Decision
from nbflow.runtime.run_state import RunState
from nbflow.runtime.workload import Workload
from nbflow.store import task_instances as ti_rows
from nbflow.store import ti_state
from nbflow.store.keys import TIKey
from nbflow.utils.state import TI_ACTIVE_STATES, TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG

DEFAULT_POOL = "default_pool"


def queue_ready_downstream(session: Session, dag: "DAG", key: TIKey, *, job_id: int | None,
                           executor: str, in_flight: frozenset[tuple[str, str, str]] = frozenset()
                           ) -> list[Workload]:
    """Queue the direct downstream instances that may run now; the workloads to hand to the executor.

    `in_flight` ((dag_id, run_id, task_id) still running or queued, as the caller knows first hand)
    rules out without a read a join whose rule waits for every upstream task: the 199 siblings of
    a wide fan-in would otherwise each read all 200 upstream states.
    """
    task = dag.task_dict[key.task_id]
    downstream = [dag.task_dict[t] for t in sorted(task.downstream_task_ids)]
    simple = [t for t in downstream if not t.is_mapped and not t.depends_on_past and t.pool == DEFAULT_POOL
              and not _waits_for_one_of(t, key, in_flight)]
    if not simple:
        return []
    # Only the candidates and their upstream tasks are read: this runs inside the write transaction.
    needed = {t.task_id for t in simple}
    for down in simple:
        needed |= down.upstream_task_ids
    state = RunState.of_rows(dag, ti_rows.get_task_states(session, key.dag_id, key.run_id, task_ids=needed))
    # max_active_tasks limits one run, not the DAG across its runs (Airflow 3, PR #42953).
    busy = ti_rows.count_task_instances(session, TI_ACTIVE_STATES, dag_id=key.dag_id, run_id=key.run_id)
    counts = state.state_counts()
    ready: list[tuple[TIKey, int]] = []
    for down in simple:
        ti = state.tis.get((down.task_id, -1))
        if ti is None or ti.state is not None:
            continue
        if state.trigger_decision(down.task_id, counts) is Decision.RUN:
            ready.append((TIKey(key.dag_id, down.task_id, key.run_id, -1), ti.try_number))
    room = max(dag.max_active_tasks - busy, 0)
    weights = priority_weights(dag)
    ready = sorted(ready, key=lambda r: -weights[r[0].task_id])[:room]
    if not ready:
        return []
    won = set(ti_state.set_task_states(session, [k for k, _ in ready], TaskInstanceState.QUEUED, expected_state=None,
                                       queued_by_job_id=job_id, executor=executor))
    workloads = []
    for ti_key, try_number in ready:
        if ti_key in won:
            down = dag.task_dict[ti_key.task_id]
            timeout = down.execution_timeout.total_seconds() if down.execution_timeout else None
            workloads.append(Workload(ti_key.dag_id, ti_key.task_id, ti_key.run_id, -1, try_number + 1,
                                      source_of(dag), job_id, timeout))
    return workloads


def _waits_for_one_of(task: "Any", key: TIKey, in_flight: frozenset[tuple[str, str, str]]) -> bool:
    if not in_flight or task.trigger_rule in EARLY_RULES:  # a TriggerRule since the task was built
        return False
    return any((key.dag_id, key.run_id, up) in in_flight for up in task.upstream_task_ids if up != key.task_id)
