"""XComs in the metadata database, for attempts run under the scheduler."""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from nbflow.runtime.xcom import HeldPushes
from nbflow.store import session_scope
from nbflow.store import xcoms as xcom_rows
from nbflow.store.keys import TIKey


class DbXComStore(HeldPushes):
    """The XComStore protocol over `nbflow.store.xcoms`; each read is its own short transaction.

    Pushes are held (`HeldPushes`) for whoever records the attempt to write with its result.
    """

    def __init__(self, session_factory: Callable[[], Session],
                 read_session_factory: Callable[[], Session] | None = None) -> None:
        super().__init__()
        self._readers = read_session_factory or session_factory

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
