"""Expanding a mapped task's placeholder instance (map index -1) into one instance per element."""
from __future__ import annotations

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from nbflow.store.keys import TaskSpec
from nbflow.store.models import TaskInstanceORM
from nbflow.utils.timezone import utcnow
from nbflow.utils.state import TaskInstanceState

TI = TaskInstanceORM.__table__


def expand_task_instances(session: Session, dag_id: str, run_id: str, spec: TaskSpec, count: int) -> int:
    """Replace the placeholder by `count` instances (0: the placeholder is skipped); how many exist now."""
    where = (TI.c.dag_id == dag_id) & (TI.c.run_id == run_id) & (TI.c.task_id == spec.task_id)
    if count == 0:
        session.execute(update(TI).where(where, TI.c.map_index == -1, TI.c.state.is_(None))
                        .values(state=TaskInstanceState.SKIPPED, updated_at=utcnow()))
        return 0
    removed = session.execute(delete(TI).where(where, TI.c.map_index == -1, TI.c.state.is_(None))).rowcount
    if not removed:  # another scheduler expanded it first
        return 0
    now = utcnow()
    session.execute(insert(TI), [
        {"dag_id": dag_id, "task_id": spec.task_id, "run_id": run_id, "map_index": i, "state": None,
         "try_number": 0, "max_tries": spec.max_tries, "pool": spec.pool, "pool_slots": spec.pool_slots,
         "priority_weight": spec.priority_weight, "operator": spec.operator, "queue": spec.queue,
         "updated_at": now} for i in range(count)])
    return count
