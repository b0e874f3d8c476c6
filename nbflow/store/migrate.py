"""Create, upgrade, reset and check the metadata database schema (`nbflow db init|upgrade|reset|check`).

Alembic runs in-process from the migrations kept inside the package; there is no alembic.ini.
Each operation is one transaction (Postgres and SQLite both have transactional DDL), so a failed
upgrade leaves the database as it was.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from nbflow.exceptions import DatabaseUnavailableError, MetadataDatabaseError
from nbflow.store.engine import READ_ONLY_OPTION, make_engine, parse_url, safe_url, sqlite_path
from nbflow.store.models import Base
from nbflow.store.pools import ensure_default_pool

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
_PG_MIGRATION_LOCK = 0x6E62666C6F77  # "nbflow": serialises concurrent `db init` on one Postgres database


@dataclass(frozen=True, slots=True)
class DbStatus:
    """What `nbflow db check` reports; `url` has its password hidden."""

    url: str
    backend: str
    reachable: bool
    current_revision: str | None
    head_revision: str
    at_head: bool
    error: str | None = None


def alembic_config() -> Config:
    """An Alembic config pointing at the package's migrations (for tests and tooling)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise MetadataDatabaseError(f"no migrations found in {MIGRATIONS_DIR}; the installation is incomplete")
    return head


def init_db(url: str | Engine) -> DbStatus:
    """Create the schema or upgrade it to the newest revision, and create `default_pool`."""
    with _engine(url) as engine, _errors(engine, "initialise"), engine.begin() as conn:
        _upgrade(conn, "head")
    return check_db(url)


def upgrade_db(url: str | Engine, revision: str = "head") -> DbStatus:
    """Upgrade the schema to `revision` (default: newest); `default_pool` is created if missing."""
    with _engine(url) as engine, _errors(engine, "upgrade"), engine.begin() as conn:
        _upgrade(conn, revision)
    return check_db(url)


def reset_db(url: str | Engine) -> DbStatus:
    """Drop every nbflow table (with all data) and alembic_version, then initialise afresh.

    Tables that are not nbflow's are left alone, so a shared Postgres schema keeps other data.
    """
    with _engine(url) as engine, _errors(engine, "reset"), engine.begin() as conn:
        _lock(conn)
        Base.metadata.drop_all(conn)
        conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
        _upgrade(conn, "head")
    return check_db(url)


def check_db(url: str | Engine) -> DbStatus:
    """Whether the database answers and is at the newest revision; never raises for a bad database."""
    parsed = url.url if isinstance(url, Engine) else parse_url(url)
    shown, backend, head = safe_url(parsed), parsed.get_backend_name(), head_revision()
    path = sqlite_path(parsed)
    if not isinstance(url, Engine) and path is not None and not path.exists():  # connecting would create it
        return DbStatus(shown, backend, False, None, head, False,
                        f"no database file at {path}; `nbflow db init` creates it")
    try:
        with _engine(url) as engine, engine.connect() as conn:
            conn = conn.execution_options(**{READ_ONLY_OPTION: True})
            current = MigrationContext.configure(conn).get_current_revision()
    except (SQLAlchemyError, OSError, MetadataDatabaseError) as err:
        return DbStatus(shown, backend, False, None, head, False, _describe(err, parsed))
    return DbStatus(shown, backend, True, current, head, current == head)


def _upgrade(conn: Connection, revision: str) -> None:
    _lock(conn)
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)
    with Session(bind=conn) as session:
        ensure_default_pool(session)
        session.flush()


def _lock(conn: Connection) -> None:
    # SQLite needs nothing: BEGIN IMMEDIATE already excludes other writers.
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


@contextmanager
def _engine(url: str | Engine) -> Iterator[Engine]:
    if isinstance(url, Engine):
        yield url
        return
    engine = make_engine(url, null_pool=True)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _errors(engine: Engine, action: str) -> Iterator[None]:
    """Turn driver errors into nbflow errors that name the database (password hidden)."""
    try:
        yield
    except DBAPIError as err:
        problem = _describe(err, engine.url)
        if err.connection_invalidated or _is_unavailable(err):
            raise DatabaseUnavailableError(safe_url(engine.url), problem, _hint(engine)) from err
        raise MetadataDatabaseError(f"metadata database {safe_url(engine.url)}: cannot {action} the schema: "
                                    f"{problem}") from err


def _is_unavailable(err: DBAPIError) -> bool:
    if not isinstance(err, OperationalError):  # e.g. a missing table is a schema problem, not an outage
        return False
    text_ = str(err.orig).lower()
    markers = ("unable to open", "readonly database", "read-only", "connection", "could not translate host",
               "does not exist", "password authentication", "no such file", "disk i/o")
    return any(marker in text_ for marker in markers)


def _hint(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return "check that the file and its folder exist and are writable, or set [database] sql_alchemy_conn"
    return "check that the server is running and the URL's host, port, user, password and database"


def _describe(err: BaseException, url: URL) -> str:
    """The error's first line, with the URL's password (if any) blanked out."""
    lines = str(getattr(err, "orig", None) or err).strip().splitlines()
    first = lines[0] if lines else type(err).__name__
    return first.replace(str(url.password), "***") if url.password else first
