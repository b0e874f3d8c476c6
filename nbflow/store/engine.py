"""Engines, sessions and transactions for the metadata database (SQLite or Postgres).

Nothing here runs at import: a component calls `make_engine(conf.sql_alchemy_conn)` once where it
is built and passes the engine (or a session factory) down (STYLE §10).

SQLite is the default database and several processes write it at once (scheduler, executor
workers, a Jupyter kernel, the CLI). Two settings make that safe:

* WAL journal, so readers never block the writer and the writer never blocks readers;
* every transaction starts with `BEGIN IMMEDIATE`, which takes the write lock up front and waits
  for it (busy_timeout). With sqlite3's default deferred BEGIN, a transaction that reads and then
  writes fails with "database is locked" at its first write whenever another writer committed in
  between, and no timeout helps (the snapshot is stale). Taking the lock at BEGIN turns that
  error into a wait, which also makes read-modify-write transactions free of lost updates.

Read-only work can ask for a deferred BEGIN with `make_session_factory(engine, read_only=True)`,
so that readers never wait for writers.
"""
from __future__ import annotations


import logging
import sqlite3
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool, QueuePool

from nbflow.exceptions import (DatabaseBusyError, DatabaseDriverMissing, DatabaseUnavailableError,
                               NbflowConfigException)

log = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option that makes SQLite begin with a deferred BEGIN (reads only).
READ_ONLY_OPTION = "nbflow_read_only"

# Postgres errors that mean "run the transaction again": serialization failure, deadlock.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def parse_url(url: str | URL) -> URL:
    """The URL with a bare `postgresql://` (or `postgres://`) turned into `postgresql+psycopg://`."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise NbflowConfigException(
            f"[database] sql_alchemy_conn: {safe_url(str(url))!r} is not a database URL; use e.g. "
            f"sqlite:////abs/path/nbflow.db or postgresql://user@host:5432/db") from err
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3; SQLAlchemy's default is psycopg2
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ***, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # unparseable: hide any "user:password@" it seems to hold
        return re.sub(r"[^\s/@]*:[^\s/@]*@", "***@", str(url))


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def make_engine(url: str | URL, *, null_pool: bool = False, pool_size: int = 5, echo: bool = False) -> Engine:
    """An engine for the metadata database, configured for concurrent use (see the module docstring).

    `null_pool=True` opens a connection per checkout, for processes that fork often or live
    briefly. A forked child must call `dispose_after_fork(engine)` before using an inherited engine.
    """
    parsed = parse_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise DatabaseUnavailableError(safe_url(parsed), f"cannot create folder {path.parent}: {err}",
                                               "set [database] sql_alchemy_conn or NBFLOW_HOME to a "
                                               "writable place") from err
            kwargs["poolclass"] = NullPool if null_pool else QueuePool
            if not null_pool:
                kwargs.update(pool_size=pool_size, max_overflow=2 * pool_size)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    if null_pool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(pool_size=pool_size, max_overflow=2 * pool_size, pool_pre_ping=True)
    try:
        return create_engine(parsed, **kwargs)
    except ImportError as err:  # the URL's driver is not installed: say which package provides it
        from nbflow.store.drivers import package_for
        module = (err.name or "").split(".")[0] or None
        raise DatabaseDriverMissing(safe_url(parsed), module or driver_name_of(parsed),
                                    package_for(parsed, module)) from None
    except NoSuchModuleError:
        raise NbflowConfigException(
            f"[database] sql_alchemy_conn: {safe_url(parsed)!r} names database {parsed.drivername!r}, which no "
            f"installed SQLAlchemy dialect provides; nbflow supports sqlite:// and postgresql://") from None


def driver_name_of(url: URL) -> str:
    from nbflow.store.drivers import driver_name
    return driver_name(url) or url.drivername


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module (it would emit a deferred BEGIN before the
        # first write only); `_on_begin` emits our own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed data
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            _begin_immediate(connection)


def _begin_immediate(connection: Any) -> None:
    """BEGIN IMMEDIATE, polling about every millisecond while another process writes.

    SQLite's own busy handler sleeps in growing steps (up to 100 ms each), so with many short
    writers (the scheduler, one process per attempt) a waiting writer oversleeps the lock's release
    by tens of milliseconds, which was most of a short task's overhead. Here the handler is off
    while we wait for the write lock, and on again (for everything else) once we hold it. The
    statements go straight to the sqlite3 connection: this runs for every write transaction, and
    SQLAlchemy's statement machinery would cost ten times the statements themselves.
    """
    raw = connection.connection.dbapi_connection
    raw.execute("PRAGMA busy_timeout=0")
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.0002
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as err:
                if not _is_busy(err) or time.monotonic() > deadline:
                    raise _wrapped(err) from err
                time.sleep(delay)
                delay = min(delay * 1.5, 0.001)
    finally:
        raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _is_busy(err: sqlite3.OperationalError) -> bool:
    text = str(err)
    return "locked" in text or "busy" in text


def _wrapped(err: sqlite3.OperationalError) -> OperationalError:
    """The error as SQLAlchemy would have raised it, so callers' retry logic (is_retryable) still applies."""
    return OperationalError("BEGIN IMMEDIATE", None, err)


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine` that keep loaded values after commit.

    `read_only=True` starts SQLite transactions with a deferred BEGIN, so they never wait for a
    writer; a write in such a session may then fail with "database is locked". No effect on Postgres.
    """
    bind = engine.execution_options(**{READ_ONLY_OPTION: True}) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def session_scope(factory: Callable[[], Session]) -> Iterator[Session]:
    """One transaction: commits when the block ends normally, rolls back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_retryable(err: BaseException) -> bool:
    """True for "database is locked/busy" (SQLite) and serialization failures or deadlocks (Postgres)."""
    if not isinstance(err, DBAPIError):
        return False
    if getattr(err.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return True
    message = str(err.orig).lower()
    return isinstance(err, OperationalError) and ("database is locked" in message or "database is busy" in message)


def retry_on_locked(fn: Callable[[], T], *, attempts: int = 5, base_delay: float = 0.05,
                    max_delay: float = 2.0) -> T:
    """Call `fn` (one whole transaction, e.g. a `session_scope` block) again when the database was busy.

    With BEGIN IMMEDIATE and a 30 s busy timeout a locked error should be rare (a writer holding
    the lock for over 30 s, or a read-only session that wrote); Postgres may report a
    serialization failure or deadlock. Waits grow exponentially with full jitter so that
    retrying processes do not collide again. Raises DatabaseBusyError after `attempts` tries.
    """
    attempt = 1
    while True:
        try:
            return fn()
        except DBAPIError as err:
            if not is_retryable(err):
                raise
            if attempt >= attempts:
                raise DatabaseBusyError(f"the metadata database stayed busy through {attempts} attempts "
                                        f"({err.orig}); another process holds a long transaction") from err
            delay = random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1)))
            log.debug("database busy (%s); attempt %d of %d in %.3fs", err.orig, attempt + 1, attempts, delay)
            time.sleep(delay)
            attempt += 1


def dispose_after_fork(engine: Engine) -> None:
    """In a forked child: forget the parent's pooled connections without closing them.

    Closing would shut the parent's sockets or SQLite handles too; the child opens its own.
    """
    engine.dispose(close=False)
