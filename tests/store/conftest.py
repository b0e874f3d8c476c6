"""Fixtures that run each store test against a SQLite file and a real Postgres schema.

Postgres: `postgresql+psycopg://postgres@127.0.0.1:5432/test` (trust auth) unless
NBFLOW_TEST_POSTGRES_URL says otherwise. Each test gets a fresh schema, selected through
`options=-csearch_path=...` on the URL, dropped afterwards. If Postgres is unreachable the
Postgres variant skips saying so, or fails when NBFLOW_REQUIRE_SERVICES=1.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nbflow.store.engine import make_engine, make_session_factory, parse_url, session_scope
from nbflow.store.migrate import init_db
from tests.services import POSTGRES_URL, require_service

PG_URL = os.environ.get("NBFLOW_TEST_POSTGRES_URL", POSTGRES_URL)


def _libpq_url(url: str) -> str:
    return parse_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test Postgres, or a skip saying it is absent."""
    try:
        conn = psycopg.connect(_libpq_url(PG_URL), autocommit=True, connect_timeout=5)
    except psycopg.Error as err:
        require_service("postgres", f"{PG_URL} is not reachable: {str(err).strip().splitlines()[0]}")
    with conn:
        yield conn


@pytest.fixture
def pg_url(postgres_admin: psycopg.Connection) -> Iterator[str]:
    """A URL whose connections see only a fresh, empty schema."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    postgres_admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        postgres_admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'nbflow.db'}"
    return request.getfixturevalue("pg_url")


@dataclass
class Db:
    """An initialised database: its URL, an engine, and transactions on it."""

    url: str
    engine: Engine
    factory: sessionmaker[Session]

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def tx(self) -> AbstractContextManager[Session]:
        """One committed transaction."""
        return session_scope(self.factory)


@pytest.fixture
def db(db_url: str) -> Iterator[Db]:
    init_db(db_url)
    engine = make_engine(db_url)
    try:
        yield Db(db_url, engine, make_session_factory(engine))
    finally:
        engine.dispose()
