"""Engines, sessions and retries."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from nbflow.exceptions import DatabaseBusyError, DatabaseUnavailableError, NbflowConfigException
from nbflow.store.engine import (
    dispose_after_fork,
    make_engine,
    make_session_factory,
    parse_url,
    retry_on_locked,
    safe_url,
    session_scope,
)
from nbflow.store.pools import get_pool, set_pool

from .conftest import Db


def test_sqlite_engine_creates_the_folder_and_sets_wal_and_timeouts(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'nbflow.db'}")
    try:
        with engine.connect() as conn:
            pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                       for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}
    finally:
        engine.dispose()
    assert (tmp_path / "a" / "b").is_dir()
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30000, "foreign_keys": 1}


def test_sqlite_transactions_begin_immediate_and_read_only_ones_deferred(tmp_path: Path) -> None:
    path = tmp_path / "nbflow.db"
    engine = make_engine(f"sqlite:///{path}")
    statements: list[str] = []
    from sqlalchemy import event

    # what SQLite itself runs (BEGIN IMMEDIATE goes straight to the sqlite3 connection)
    event.listen(engine, "connect", lambda dbapi_connection, _: dbapi_connection.set_trace_callback(statements.append))
    try:
        with session_scope(make_session_factory(engine)) as s:
            s.execute(text("SELECT 1"))
            # another connection cannot take the write lock while this transaction holds it
            other = sqlite3.connect(path, timeout=0)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
        with session_scope(make_session_factory(engine, read_only=True)) as s:
            s.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert [st for st in statements if st.startswith("BEGIN")] == ["BEGIN IMMEDIATE", "BEGIN"]


def test_plain_postgresql_url_uses_psycopg3() -> None:
    assert parse_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_safe_url_hides_the_password() -> None:
    assert safe_url("postgresql://etl:s3cret@db:5432/wh") == "postgresql://etl:***@db:5432/wh"
    assert "s3cret" not in safe_url("not a url etl:s3cret@db")


def test_bad_url_says_which_setting_and_hides_password() -> None:
    with pytest.raises(NbflowConfigException, match=r"sql_alchemy_conn") as info:
        parse_url("nonsense:s3cret@")
    assert "s3cret" not in str(info.value)


def test_sqlite_folder_that_cannot_be_created_names_the_url(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")  # works as root too, unlike chmod
    with pytest.raises(DatabaseUnavailableError, match=r"sqlite:///.*file/nbflow\.db.*cannot create folder"):
        make_engine(f"sqlite:///{blocker / 'nbflow.db'}")


def test_session_scope_commits_on_success_and_rolls_back_on_error(db: Db) -> None:
    with db.tx() as s:
        set_pool(s, "kept", 3)
    with pytest.raises(RuntimeError), db.tx() as s:
        set_pool(s, "lost", 3)
        raise RuntimeError("boom")
    with db.tx() as s:
        assert get_pool(s, "kept") is not None and get_pool(s, "lost") is None


def _locked() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_retry_on_locked_runs_the_transaction_again() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _locked()
        return "done"

    assert retry_on_locked(flaky, attempts=5, base_delay=0.001) == "done"
    assert len(calls) == 3


def test_retry_on_locked_gives_up_with_a_clear_error() -> None:
    def always_locked() -> None:
        raise _locked()

    with pytest.raises(DatabaseBusyError, match="stayed busy through 3 attempts"):
        retry_on_locked(always_locked, attempts=3, base_delay=0.001)


def test_retry_on_locked_does_not_retry_other_errors() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))

    with pytest.raises(OperationalError):
        retry_on_locked(broken, base_delay=0.001)
    assert len(calls) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_disposes_the_inherited_engine_and_parent_keeps_working(db: Db) -> None:
    with db.tx() as s:
        set_pool(s, "forked", 1)  # the pool now holds an open connection
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            dispose_after_fork(db.engine)
            with session_scope(make_session_factory(db.engine)) as s:
                set_pool(s, "forked", 2)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with db.tx() as s:
        pool = get_pool(s, "forked")
    assert pool is not None and pool.slots == 2
