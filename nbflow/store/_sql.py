"""SQL helpers shared by the repository modules (dialect-specific upserts, key filters)."""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, Table, and_, false, or_, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nbflow.exceptions import InvalidStateError
from nbflow.store.keys import TIKey


class _AnyState:
    """Sentinel: "whatever the current state is" (None is a real state, so it cannot be the default)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY_STATE"


ANY_STATE: Any = _AnyState()


def insert_for(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports `on_conflict_do_*` on the session's dialect (SQLite or Postgres)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the metadata database supports SQLite and Postgres, not {name}")


def upsert(session: Session, table: Table, values: Mapping[str, Any], *, conflict: Sequence[str],
           update: Iterable[str]) -> None:
    """INSERT `values`, or on a `conflict` key clash UPDATE the `update` columns to the new values."""
    stmt = insert_for(session, table).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=list(conflict),
                                      set_={col: stmt.excluded[col] for col in update})
    session.execute(stmt)


def upsert_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, conflict: Sequence[str],
                update: Iterable[str]) -> None:
    """`upsert` of many rows (same keys) in one executemany."""
    stmt = insert_for(session, table)
    stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_={col: stmt.excluded[col] for col in update})
    session.execute(stmt, list(rows))


def ti_key_filter(table: Table, key: TIKey) -> ColumnElement[bool]:
    """WHERE clause selecting one task instance (or its xcoms) by key."""
    return and_(table.c.dag_id == key.dag_id, table.c.task_id == key.task_id,
                table.c.run_id == key.run_id, table.c.map_index == key.map_index)


def ti_keys_filter(table: Table, keys: Collection[TIKey]) -> ColumnElement[bool]:
    """WHERE clause selecting many task instances by key, as one row-value IN (SQLite ≥ 3.15, Postgres)."""
    cols = tuple_(table.c.dag_id, table.c.task_id, table.c.run_id, table.c.map_index)
    return cols.in_([(k.dag_id, k.task_id, k.run_id, k.map_index) for k in keys])


def state_filter(column: Any, expected: Any, *, allowed: Collection[str | None]) -> ColumnElement[bool]:
    """`column` equals one expected state: a state, None (IS NULL), or a collection of them."""
    wanted: list[str | None] = list(expected) if isinstance(expected, (set, frozenset, list, tuple)) else [expected]
    check_states(wanted, allowed)
    clauses: list[ColumnElement[bool]] = []
    named = [s for s in wanted if s is not None]
    if named:
        clauses.append(column.in_(named))
    if None in wanted:
        clauses.append(column.is_(None))
    if not clauses:
        return false()
    return or_(*clauses) if len(clauses) > 1 else clauses[0]


def check_states(states: Iterable[str | None], allowed: Collection[str | None], what: str = "state") -> None:
    """Raise InvalidStateError naming the first state that is not in `allowed`."""
    for state in states:
        if state not in allowed:
            known = ", ".join(sorted(s for s in allowed if s is not None))
            raise InvalidStateError(f"unknown {what} {state!r}; known: {known}"
                                    + (", None" if None in allowed else ""))


def interval_bounds(data_interval: Any) -> tuple[Any, Any]:
    """(start, end) from None, a 2-tuple, or an object with .start/.end (the runtime's DataInterval)."""
    if data_interval is None:
        return None, None
    if hasattr(data_interval, "start") and hasattr(data_interval, "end"):
        return data_interval.start, data_interval.end
    start, end = data_interval
    return start, end


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (`Session.execute` is typed as returning a plain Result)."""
    return cast(CursorResult[Any], result).rowcount
