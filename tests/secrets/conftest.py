"""Fixtures for the secrets tests: a fresh default chain per test, metadata databases, a Vault dev server."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbflow.secrets.chain import reset_default_chain
from tests.secrets.vault_server import disposable_vault, vault  # noqa: F401 - fixtures
from tests.services import require_service

PG_URL = os.environ.get("NBFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _fresh_default_chain() -> Iterator[None]:
    reset_default_chain()
    yield
    reset_default_chain()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite metadata database file with the current schema."""
    from nbflow.store.migrate import init_db

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    init_db(url)
    return url


@pytest.fixture
def postgres_url_schema() -> Iterator[str]:
    """A Postgres metadata database in a fresh schema (dropped afterwards), with the current schema."""
    import psycopg

    from nbflow.store.migrate import init_db

    libpq = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(libpq, autocommit=True, connect_timeout=5)
    except psycopg.Error as err:
        require_service("postgres", f"{PG_URL} is not reachable: {str(err).strip().splitlines()[0]}")
    schema = f"sec_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
            init_db(url)
            yield url
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The metadata database of the test, once on SQLite and once on Postgres."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url_schema"
    return request.getfixturevalue(name)
