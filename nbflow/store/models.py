"""The metadata database tables (SQLAlchemy 2.0 declarative). ORM classes stay inside `nbflow.store`.

Other layers get frozen snapshots from `nbflow.store.rows` through the repository functions.
Column names follow Airflow's where Airflow has the same column, so that people who know
Airflow's schema can read ours. A change here needs a new migration in `migrations/versions/`;
`tests/store/test_migrate.py` fails when the migrations and these classes disagree.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nbflow.store.types import UtcDateTime
from nbflow.utils.timezone import utcnow

ID_LEN = 250  # dag_id, task_id, run_id: Airflow's limit

# Named constraints let later migrations alter them, including SQLite's batch mode.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base; `Base.metadata` is what the migrations are checked against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UtcDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


def table_of(orm: type[Base]) -> Table:
    """The Core table of a mapped class, typed as a Table (SQLAlchemy types `__table__` as FromClause)."""
    table = orm.__table__
    if not isinstance(table, Table):  # pragma: no cover - every class here maps one table
        raise TypeError(f"{orm.__name__} is not mapped to a single table")
    return table


class DagORM(Base):
    """One row per DAG the DagBag has seen; scheduling fields are the scheduler's bookkeeping."""

    __tablename__ = "dag"

    dag_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    fileloc: Mapped[str | None] = mapped_column(Text)
    is_paused: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    last_parsed_time: Mapped[dt.datetime | None]
    next_dagrun: Mapped[dt.datetime | None]
    next_dagrun_data_interval_start: Mapped[dt.datetime | None]
    next_dagrun_data_interval_end: Mapped[dt.datetime | None]
    next_dagrun_create_after: Mapped[dt.datetime | None]
    max_active_runs: Mapped[int | None]
    max_active_tasks: Mapped[int | None]
    schedule: Mapped[str | None] = mapped_column(Text)  # human summary, e.g. "@daily" or "0 6 * * *"
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(Text)
    owners: Mapped[str | None] = mapped_column(String(2000))
    has_import_errors: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ImportErrorORM(Base):
    """A DAG file that failed to parse, with its traceback; replaced on every parse."""

    __tablename__ = "import_error"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(Text)
    dag_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    stacktrace: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SerializedDagORM(Base):
    """A DAG as the DAG processor last parsed it (JSON): what the scheduler and listings read."""

    __tablename__ = "serialized_dag"

    dag_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    fileloc: Mapped[str] = mapped_column(Text, index=True)
    source_hash: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DagFileORM(Base):
    """One DAG file (or kernel source) the DAG processor saw: its stamp and hash, and its import error."""

    __tablename__ = "dag_file"

    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    mtime: Mapped[int] = mapped_column(BigInteger)  # ns
    size: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    parsed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    import_error: Mapped[str | None] = mapped_column(Text)


class DagRunORM(Base):
    """One run of a DAG. No foreign key to `dag`: `dags test` may run a DAG that was never synced."""

    __tablename__ = "dag_run"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id"),
        Index("ix_dag_run_dag_id_state", "dag_id", "state"),
        Index("ix_dag_run_dag_id_logical_date", "dag_id", "logical_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_type: Mapped[str] = mapped_column(String(50))  # manual | scheduled | backfill
    logical_date: Mapped[dt.datetime | None]
    data_interval_start: Mapped[dt.datetime | None]
    data_interval_end: Mapped[dt.datetime | None]
    state: Mapped[str] = mapped_column(String(50))  # queued | running | success | failed
    conf: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    queued_at: Mapped[dt.datetime | None]
    start_date: Mapped[dt.datetime | None]
    end_date: Mapped[dt.datetime | None]
    last_scheduling_decision: Mapped[dt.datetime | None]
    triggered_by: Mapped[str | None] = mapped_column(String(50))  # cli, ui, scheduler, test, ...
    failed_task: Mapped[str | None] = mapped_column(Text)  # the task that failed the run, for messages
    external_trigger: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)


class TaskInstanceORM(Base):
    """One task (or one mapped index of it) in one DAG run; the current or latest attempt."""

    __tablename__ = "task_instance"
    __table_args__ = (
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"),
        Index("ix_task_instance_dag_id_run_id_state", "dag_id", "run_id", "state"),
        Index("ix_task_instance_dag_id_state", "dag_id", "state"),
        Index("ix_task_instance_state", "state"),
    )

    dag_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True, default=-1, server_default=text("-1"))
    state: Mapped[str | None] = mapped_column(String(20))
    try_number: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    max_tries: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    start_date: Mapped[dt.datetime | None]
    end_date: Mapped[dt.datetime | None]
    duration: Mapped[float | None] = mapped_column(Float)
    hostname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None]
    queued_dttm: Mapped[dt.datetime | None]
    queued_by_job_id: Mapped[int | None]
    last_heartbeat_at: Mapped[dt.datetime | None]
    executor: Mapped[str | None] = mapped_column(String(1000))
    queue: Mapped[str] = mapped_column(String(256), default="default")
    pool: Mapped[str] = mapped_column(String(256), default="default_pool")
    pool_slots: Mapped[int] = mapped_column(Integer, default=1)
    priority_weight: Mapped[int] = mapped_column(Integer, default=1)
    operator: Mapped[str | None] = mapped_column(String(1000))
    next_retry_at: Mapped[dt.datetime | None]  # an up_for_retry instance may run from this time on
    external_executor_id: Mapped[str | None] = mapped_column(String(250))
    rendered_map_index: Mapped[str | None] = mapped_column(String(250))
    custom_operator_name: Mapped[str | None] = mapped_column(String(1000))
    updated_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)


class TaskInstanceHistoryORM(Base):
    """Each ended attempt of a task instance, so earlier tries stay visible after a retry or clear."""

    __tablename__ = "task_instance_history"
    __table_args__ = (
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"),
        Index("ix_task_instance_history_key", "dag_id", "run_id", "task_id", "map_index", "try_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    task_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    try_number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str | None] = mapped_column(String(20))
    start_date: Mapped[dt.datetime | None]
    end_date: Mapped[dt.datetime | None]
    duration: Mapped[float | None] = mapped_column(Float)
    hostname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None]


class TaskRescheduleORM(Base):
    """One reschedule of a sensor's attempt (mode="reschedule"): when the poke started and when it pokes again.

    The first row of an instance's current try says when its sensor timeout started (Airflow's table).
    """

    __tablename__ = "task_reschedule"
    __table_args__ = (
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"),
        Index("ix_task_reschedule_key", "dag_id", "run_id", "task_id", "map_index", "try_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    task_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    try_number: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[dt.datetime]
    end_date: Mapped[dt.datetime]
    reschedule_date: Mapped[dt.datetime]


class XComORM(Base):
    """A value a task pushed, as JSON text; deleted with its DAG run."""

    __tablename__ = "xcom"
    __table_args__ = (
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"),
    )

    dag_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True, default=-1)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON text; the runtime's XCom backend serialises
    timestamp: Mapped[dt.datetime] = mapped_column(default=utcnow)
    dag_run_id: Mapped[int | None]


class PoolORM(Base):
    """A named limit on how many task slots may be queued or running at once."""

    __tablename__ = "slot_pool"

    pool: Mapped[str] = mapped_column(String(256), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    include_deferred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ConnectionORM(Base):
    """A stored connection; `password` and `extra` hold whatever text the secrets layer wrote
    (Fernet-encrypted when `is_encrypted` / `is_extra_encrypted`)."""

    __tablename__ = "connection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conn_id: Mapped[str] = mapped_column(String(ID_LEN), unique=True)
    conn_type: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(500))
    schema: Mapped[str | None] = mapped_column(String(500))
    login: Mapped[str | None] = mapped_column(Text)
    password: Mapped[str | None] = mapped_column(Text)
    port: Mapped[int | None]
    extra: Mapped[str | None] = mapped_column(Text)
    is_encrypted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_extra_encrypted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class VariableORM(Base):
    """A stored variable; `val` is Fernet-encrypted text when `is_encrypted`."""

    __tablename__ = "variable"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(ID_LEN), unique=True)
    val: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    is_encrypted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class JobORM(Base):
    """A long-running process (scheduler, worker) that proves it is alive by heartbeating."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_job_type_state_latest_heartbeat", "job_type", "state", "latest_heartbeat"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_type: Mapped[str] = mapped_column(String(30))  # scheduler | worker | triggerer | ...
    state: Mapped[str] = mapped_column(String(20))  # running | success | failed
    hostname: Mapped[str | None] = mapped_column(String(500))
    pid: Mapped[int | None]
    start_date: Mapped[dt.datetime | None]
    end_date: Mapped[dt.datetime | None]
    latest_heartbeat: Mapped[dt.datetime | None]
