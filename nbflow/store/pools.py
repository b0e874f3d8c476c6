"""Pools: named limits on how many task slots may be queued or running at once.

Every function takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from nbflow.exceptions import MetadataDatabaseError
from nbflow.store._prepared import prepared
from nbflow.store._sql import rowcount, upsert
from nbflow.store.models import PoolORM, TaskInstanceORM, table_of
from nbflow.store.rows import PoolRow
from nbflow.utils.state import SLOT_HOLDING_STATES, TaskInstanceState

POOL = table_of(PoolORM)
TI = table_of(TaskInstanceORM)

DEFAULT_POOL_NAME = "default_pool"
DEFAULT_POOL_SLOTS = 128


def get_pool(session: Session, name: str) -> PoolRow | None:
    """The pool, or None."""
    found = session.execute(select(POOL).where(POOL.c.pool == name)).mappings().first()
    return PoolRow.from_mapping(found) if found else None


def list_pools(session: Session) -> list[PoolRow]:
    """Every pool, by name."""
    return [PoolRow.from_mapping(m) for m in session.execute(select(POOL).order_by(POOL.c.pool)).mappings()]


def set_pool(session: Session, name: str, slots: int, description: str | None = None, *,
             include_deferred: bool = False) -> PoolRow:
    """Create or update a pool. `slots` of -1 means unlimited, as in Airflow."""
    if slots < -1:
        raise MetadataDatabaseError(f"pool {name!r}: slots must be -1 (unlimited) or more, not {slots}")
    values = {"pool": name, "slots": slots, "description": description, "include_deferred": include_deferred}
    upsert(session, POOL, values, conflict=["pool"], update=("slots", "description", "include_deferred"))
    return PoolRow.from_mapping(session.execute(select(POOL).where(POOL.c.pool == name)).mappings().one())


def delete_pool(session: Session, name: str) -> bool:
    """Delete a pool (never the default pool); whether it existed."""
    if name == DEFAULT_POOL_NAME:
        raise MetadataDatabaseError(f"the {DEFAULT_POOL_NAME!r} cannot be deleted; set its slots instead")
    return rowcount(session.execute(delete(POOL).where(POOL.c.pool == name))) == 1


def ensure_default_pool(session: Session) -> None:
    """Create `default_pool` with 128 slots unless it exists (a user's slot count is kept)."""
    if get_pool(session, DEFAULT_POOL_NAME) is None:
        set_pool(session, DEFAULT_POOL_NAME, DEFAULT_POOL_SLOTS, "Default pool")


def lock_pools(session: Session) -> None:
    """Hold every pool row until the transaction ends, so two schedulers do not both fill the same slots.

    Postgres runs at READ COMMITTED: without this, two schedulers can read the same free slot
    count and both queue work. SQLite needs nothing (BEGIN IMMEDIATE already serialises writers;
    SQLAlchemy leaves FOR UPDATE out there). Call it before reading `pool_slots_in_use`.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.connection()  # begins the transaction (BEGIN IMMEDIATE holds the write lock already)
        return
    session.execute(select(POOL.c.pool).order_by(POOL.c.pool).with_for_update()).all()


def pool_slots_in_use(session: Session) -> dict[str, int]:
    """Slots held per pool: queued and running instances, plus deferred ones in pools that count them.

    Pools with nothing in use are absent (read them as 0).
    """
    stmt = prepared("pool_slots_in_use", _build_slots_in_use)
    return {pool: int(used) for pool, used in session.execute(stmt).all()}


def _build_slots_in_use() -> Any:
    # One IN over the state index (an OR with the deferred case would make SQLite scan every instance).
    counted = TI.c.state.in_(sorted(SLOT_HOLDING_STATES | {TaskInstanceState.DEFERRED}))
    deferred_ok = (TI.c.state != TaskInstanceState.DEFERRED) | TI.c.pool.in_(
        select(POOL.c.pool).where(POOL.c.include_deferred.is_(True)))
    return select(TI.c.pool, func.sum(TI.c.pool_slots)).where(counted, deferred_ok).group_by(TI.c.pool)
