"""Schema management: init, upgrade, reset, check."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from nbflow.exceptions import DatabaseUnavailableError
from nbflow.store.engine import make_engine, make_session_factory, session_scope
from nbflow.store.migrate import DbStatus, check_db, head_revision, init_db, reset_db, upgrade_db
from nbflow.store.models import Base, PoolORM
from nbflow.store.pools import get_pool, set_pool

from .conftest import Db


def _make_empty(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()


def test_check_reports_an_empty_database_as_reachable_but_not_at_head(db_url: str) -> None:
    _make_empty(db_url)
    status = check_db(db_url)
    assert isinstance(status, DbStatus)
    assert (status.reachable, status.current_revision, status.at_head) == (True, None, False)
    assert status.head_revision == head_revision() == "0004"


def test_init_creates_every_table_at_head_with_the_default_pool(db_url: str) -> None:
    status = init_db(db_url)
    assert (status.reachable, status.at_head, status.current_revision) == (True, True, "0004")
    engine = make_engine(db_url)
    try:
        assert set(Base.metadata.tables) | {"alembic_version"} <= set(inspect(engine).get_table_names())
        with session_scope(make_session_factory(engine)) as s:
            pool = get_pool(s, "default_pool")
    finally:
        engine.dispose()
    assert pool is not None and pool.slots == 128


def test_init_and_upgrade_twice_change_nothing_and_keep_data(db_url: str) -> None:
    init_db(db_url)
    engine = make_engine(db_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            set_pool(s, "default_pool", 7)
        assert init_db(db_url).at_head and upgrade_db(db_url).at_head
        with session_scope(make_session_factory(engine)) as s:
            pool = get_pool(s, "default_pool")
    finally:
        engine.dispose()
    assert pool is not None and pool.slots == 7  # a user's slot count survives re-init


def test_reset_drops_data_and_reinitialises(db: Db) -> None:
    with db.tx() as s:
        set_pool(s, "extra", 2)
        set_pool(s, "default_pool", 5)
    status = reset_db(db.url)
    assert status.at_head
    with db.tx() as s:
        names = s.scalars(select(PoolORM.__table__.c.pool)).all()
        pool = get_pool(s, "default_pool")
    assert names == ["default_pool"] and pool is not None and pool.slots == 128


def test_migrations_produce_exactly_the_models_schema(db: Db) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_init_accepts_an_engine(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert init_db(engine).at_head and check_db(engine).at_head
    finally:
        engine.dispose()


def test_check_on_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    status = check_db(f"sqlite:///{tmp_path / 'nbflow.db'}")
    assert not status.reachable and not status.at_head and "nbflow db init" in (status.error or "")
    assert not (tmp_path / "nbflow.db").exists()


def test_unreachable_postgres_raises_naming_the_url_without_its_password() -> None:
    url = "postgresql://etl:s3cret@127.0.0.1:1/nbflow"
    with pytest.raises(DatabaseUnavailableError) as info:
        init_db(url)
    message = str(info.value)
    assert "postgresql+psycopg://etl:***@127.0.0.1:1/nbflow" in message and "s3cret" not in message
    assert "server is running" in message


def test_check_on_unreachable_postgres_reports_it_without_raising() -> None:
    status = check_db("postgresql://etl:s3cret@127.0.0.1:1/nbflow")
    assert not status.reachable and status.error and "s3cret" not in status.error + status.url


def test_unwritable_sqlite_location_raises_naming_the_url(tmp_path: Path) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(DatabaseUnavailableError, match=r"metadata database sqlite:///.*home/nbflow\.db"):
        init_db(f"sqlite:///{blocker / 'nbflow.db'}")


def test_read_only_sqlite_file_raises_naming_the_url(tmp_path: Path) -> None:
    path = tmp_path / "nbflow.db"
    sqlite3.connect(path).close()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"  # read-only even for root, unlike chmod
    with pytest.raises(DatabaseUnavailableError, match=r"metadata database sqlite:///file.*nbflow\.db.*readonly"):
        init_db(url)


def test_the_fast_revision_check_agrees_with_alembic(db_url: str) -> None:
    from nbflow.store import make_engine, make_session_factory, session_scope
    from nbflow.store.revision import at_newest_revision, newest_revision
    assert newest_revision() == head_revision()
    sessions = make_session_factory(make_engine(db_url))
    with session_scope(sessions) as session:
        before = at_newest_revision(session)
    init_db(db_url)
    with session_scope(sessions) as session:
        assert (before, at_newest_revision(session)) == (False, True)
