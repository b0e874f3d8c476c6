"""Frozen snapshots of table rows: what repository functions return to other layers.

ORM objects stay inside the store (STYLE §4); a snapshot is hashable, picklable and safe to keep
after the session that read it has closed. Each class has exactly the columns of its table
(checked by `tests/store/test_rows.py`), plus helpers that callers would otherwise rebuild.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Self

from nbflow.store.keys import TIKey


class _Snapshot:
    __slots__ = ()

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> Self:
        """Build from a result row's mapping; extra keys are ignored."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class DagRow(_Snapshot):
    """A `dag` row."""

    dag_id: str
    fileloc: str | None
    is_paused: bool
    is_active: bool
    last_parsed_time: dt.datetime | None
    next_dagrun: dt.datetime | None
    next_dagrun_data_interval_start: dt.datetime | None
    next_dagrun_data_interval_end: dt.datetime | None
    next_dagrun_create_after: dt.datetime | None
    max_active_runs: int | None
    max_active_tasks: int | None
    schedule: str | None
    tags: list[str]
    description: str | None
    owners: str | None
    has_import_errors: bool

    def __hash__(self) -> int:  # tags is a list
        return hash(self.dag_id)


@dataclass(frozen=True, slots=True)
class ImportErrorRow(_Snapshot):
    """An `import_error` row: a DAG file that failed to parse."""

    id: int
    filename: str
    dag_id: str | None
    stacktrace: str
    timestamp: dt.datetime


@dataclass(frozen=True, slots=True)
class SerializedDagRow(_Snapshot):
    """A `serialized_dag` row: one DAG as the DAG processor stored it (its JSON form in `data`)."""

    dag_id: str
    fileloc: str
    source_hash: str
    data: dict[str, Any]
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DagFileRow(_Snapshot):
    """A `dag_file` row: a file the DAG processor parsed, its stamp (mtime in ns), hash and import error."""

    path: str
    mtime: int
    size: int
    hash: str
    parsed_at: dt.datetime
    import_error: str | None


@dataclass(frozen=True, slots=True)
class DagRunRow(_Snapshot):
    """A `dag_run` row."""

    id: int
    dag_id: str
    run_id: str
    run_type: str
    logical_date: dt.datetime | None
    data_interval_start: dt.datetime | None
    data_interval_end: dt.datetime | None
    state: str
    conf: dict[str, Any]
    queued_at: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    last_scheduling_decision: dt.datetime | None
    triggered_by: str | None
    failed_task: str | None
    external_trigger: bool
    updated_at: dt.datetime | None

    def __hash__(self) -> int:  # conf is a dict
        return hash((self.dag_id, self.run_id))


@dataclass(frozen=True, slots=True)
class TaskInstanceRow(_Snapshot):
    """A `task_instance` row; `key` names it."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    state: str | None
    try_number: int
    max_tries: int
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration: float | None
    hostname: str | None
    pid: int | None
    queued_dttm: dt.datetime | None
    queued_by_job_id: int | None
    last_heartbeat_at: dt.datetime | None
    executor: str | None
    queue: str
    pool: str
    pool_slots: int
    priority_weight: int
    operator: str | None
    next_retry_at: dt.datetime | None
    external_executor_id: str | None
    rendered_map_index: str | None
    custom_operator_name: str | None
    updated_at: dt.datetime | None

    @property
    def key(self) -> TIKey:
        return TIKey(self.dag_id, self.task_id, self.run_id, self.map_index)


@dataclass(frozen=True, slots=True)
class TaskInstanceHistoryRow(_Snapshot):
    """A `task_instance_history` row: one ended attempt."""

    id: int
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    state: str | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration: float | None
    hostname: str | None
    pid: int | None


@dataclass(frozen=True, slots=True)
class TaskRescheduleRow(_Snapshot):
    """A `task_reschedule` row: one poke of a sensor in reschedule mode, and when it pokes again."""

    id: int
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    start_date: dt.datetime
    end_date: dt.datetime
    reschedule_date: dt.datetime


@dataclass(frozen=True, slots=True)
class XComRow(_Snapshot):
    """An `xcom` row; `value` is JSON text."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    key: str
    value: str
    timestamp: dt.datetime
    dag_run_id: int | None


@dataclass(frozen=True, slots=True)
class PoolRow(_Snapshot):
    """A `slot_pool` row."""

    pool: str
    slots: int
    description: str | None
    include_deferred: bool


@dataclass(frozen=True, slots=True)
class ConnectionRow(_Snapshot):
    """A `connection` row, with password and extra as stored (possibly encrypted)."""

    id: int
    conn_id: str
    conn_type: str
    description: str | None
    host: str | None
    schema: str | None
    login: str | None
    password: str | None
    port: int | None
    extra: str | None
    is_encrypted: bool
    is_extra_encrypted: bool

    def __repr__(self) -> str:  # never print a password, even an encrypted one
        return f"ConnectionRow(conn_id={self.conn_id!r}, conn_type={self.conn_type!r}, host={self.host!r})"


@dataclass(frozen=True, slots=True)
class VariableRow(_Snapshot):
    """A `variable` row, with `val` as stored (possibly encrypted)."""

    id: int
    key: str
    val: str | None
    description: str | None
    is_encrypted: bool

    def __repr__(self) -> str:  # values may be secrets
        return f"VariableRow(key={self.key!r}, is_encrypted={self.is_encrypted})"


@dataclass(frozen=True, slots=True)
class JobRow(_Snapshot):
    """A `job` row."""

    id: int
    job_type: str
    state: str
    hostname: str | None
    pid: int | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    latest_heartbeat: dt.datetime | None
