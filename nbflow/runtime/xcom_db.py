"""XComs in the metadata database, for attempts run under the scheduler."""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from nbflow.store import session_scope
from nbflow.store import xcoms as xcom_rows
from nbflow.store.keys import TIKey


class DbXComStore:
    """The XComStore protocol over `nbflow.store.xcoms`; each read is its own short transaction.

    With `deferred=True` the values an attempt pushes are held here and written, by whoever takes them with `take_pending`, in
    the transaction that records the attempt's result: one write transaction per attempt instead
    of one per push, and a task's state and its XComs become visible together. The attempt's own
    pulls see what it pushed.
    """

    def __init__(self, session_factory: Callable[[], Session],
                 read_session_factory: Callable[[], Session] | None = None, *, deferred: bool = False) -> None:
        self._sessions = session_factory
        self._readers = read_session_factory or session_factory
        self._deferred = deferred
        self._pending: dict[tuple[TIKey, str], str] = {}

    def set(self, key: TIKey, name: str, value_json: str) -> None:
        if self._deferred:
            self._pending[(key, name)] = value_json
            return
        with session_scope(self._sessions) as session:
            xcom_rows.set_xcom(session, key, name, value_json)

    def take_pending(self) -> list[tuple[TIKey, str, str]]:
        """The held values, (key, name, JSON), for the transaction that records the attempt's result."""
        pending = [(key, name, value_json) for (key, name), value_json in self._pending.items()]
        self._pending.clear()
        return pending

    def get(self, key: TIKey, name: str) -> str | None:
        held = self._pending.get((key, name))
        if held is not None:
            return held
        with session_scope(self._readers) as session:
            row = xcom_rows.get_xcom(session, key, name)
            return row.value if row else None

    def get_latest(self, key: TIKey, name: str) -> str | None:
        with session_scope(self._readers) as session:
            rows = xcom_rows.get_xcoms(session, key.dag_id, key.run_id, key.task_id, name,
                                       map_indexes=key.map_index, include_prior_dates=True)
            return rows[0].value if rows else None

    def get_mapped(self, dag_id: str, run_id: str, task_id: str, name: str) -> list[str | None]:
        with session_scope(self._readers) as session:
            rows = xcom_rows.get_xcoms(session, dag_id, run_id, task_id, name)
            return [r.value for r in rows if r.map_index >= 0]

    def clear(self, key: TIKey) -> None:
        """No-op: the attempt's claim already deleted its earlier XComs in the same transaction."""
