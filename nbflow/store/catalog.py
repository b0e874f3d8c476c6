"""The DAG processor's tables as plain data: what one refresh writes, what a listing reads.

Two writers apply a `CatalogWrites` (`serialized_dags.SessionCatalog` through SQLAlchemy, for Postgres
and other URLs; `sqlite_catalog.SqliteCatalog` through the stdlib sqlite3 module, so that `nbflow dags
list` on SQLite never pays for importing SQLAlchemy). The runtime decides the writes once; both
writers store the same rows. This module imports nothing beyond the standard library.

Records here are NamedTuples rather than frozen dataclasses: both are immutable, hashable and picklable,
but a slotted dataclass costs ~1.5 ms to define against ~0.2 ms, and `dags list` imports this module
on every call (its whole budget is 0.1 s).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol


class StoredFile(NamedTuple):
    """A `dag_file` row as the DAG processor compares it with the folder (`rows.DagFileRow`'s fields)."""

    path: str
    mtime: int  # ns
    size: int
    hash: str
    parsed_at: dt.datetime  # aware, UTC
    import_error: str | None


class FileRecord(NamedTuple):
    """A `dag_file` row to insert or replace: a file just parsed (or an invalid ignore file)."""

    path: str
    mtime: int
    size: int
    hash: str
    import_error: str | None


class FileDags(NamedTuple):
    """The DAGs a parsed file now defines (ids, JSON texts): they replace every other DAG stored for it.

    The texts are stored as they are (`json.dumps` output, what SQLAlchemy's JSON type writes too)."""

    path: str
    source_hash: str
    dag_ids: tuple[str, ...]
    texts: tuple[str, ...]

    @property
    def dags(self) -> list[dict[str, Any]]:
        """The JSON forms, decoded (for writers that encode them themselves)."""
        return [json.loads(text) for text in self.texts]


class CatalogWrites(NamedTuple):
    """Everything one refresh changes, applied in one transaction.

    Order of application (equivalent to doing it file by file: each step touches rows the others don't):
    `touched` stamps; `removed` files forgotten with their DAGs (and their `dag` rows made inactive);
    `replaced` DAGs upserted, then each file's other DAGs deleted; `records` written in order; finally
    `dag` rows of each replaced file that it no longer defines made inactive.
    """

    at: dt.datetime  # parsed_at and updated_at of everything written (aware, UTC)
    touched: tuple[tuple[str, int, int], ...] = ()
    removed: tuple[str, ...] = ()
    replaced: tuple[FileDags, ...] = ()
    records: tuple[FileRecord, ...] = ()

    def __bool__(self) -> bool:  # a tuple of five fields is always true; this says whether there is work
        return bool(self.touched or self.removed or self.replaced or self.records)


class ListedDag(NamedTuple):
    """What a listing shows of one stored DAG (read without decoding the whole serialized DAG)."""

    dag_id: str
    fileloc: str
    schedule: str | None
    tags: tuple[str, ...]
    is_paused_upon_creation: bool | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "ListedDag":
        """From a serialized DAG's JSON form, the fields the SQLite reader extracts in SQL."""
        paused = data.get("is_paused_upon_creation")
        return cls(data["dag_id"], data["fileloc"], data["timetable"].get("summary"), tuple(data["tags"]),
                   None if paused is None else bool(paused))


class CatalogStore(Protocol):
    """Where the DAG processor keeps its files and DAGs (see the module docstring for the two kinds)."""

    def dag_files(self) -> dict[str, StoredFile]:
        """Every file the DAG processor recorded, by path."""
        ...

    def update(self, decide: Callable[[dict[str, str]], CatalogWrites]) -> None:
        """One write transaction: `decide` gets the stored DAGs' owners (dag_id -> file) read inside it."""
        ...


__all__ = ["CatalogStore", "CatalogWrites", "FileDags", "FileRecord", "ListedDag", "StoredFile"]
