"""One DAG processor, two ways to its tables: sqlite3 for SQLite (listings skip SQLAlchemy), SQLAlchemy otherwise.

Both must store the same rows and list the same DAGs, whatever the folder holds: good files, a broken
file quoting a secret, a file that kills its parser, a duplicate dag_id, an invalid ignore line.
"""
from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from nbflow.configuration import load_config
from nbflow.runtime import api_dags
from nbflow.runtime.dag_processor import ProcessorSettings, refresh, refresh_catalog
from nbflow.runtime.environment import Environment
from nbflow.runtime.parse_processes import ParseLimits
from nbflow.store import make_engine, make_session_factory, session_scope
from nbflow.store import serialized_dags as stored
from nbflow.store.migrate import init_db
from nbflow.store.sqlite_catalog import open_catalog
from tests.conftest import NbflowEnv, write_dag
from tests.store.conftest import pg_url, postgres_admin  # noqa: F401 - fixtures for the Postgres case

SECRET = "s3cret-value-42"


def dag_file(dag_id: str, *, tags: str = "[]", extra: str = "") -> str:
    return f"""
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("{dag_id}", schedule="@hourly", start_date=datetime(2025, 1, 1), tags={tags}{extra}):
            EmptyOperator(task_id="only")
    """


def fill_folder(dags: Path) -> None:
    write_dag(dags, "a.py", dag_file("alpha", tags='["x", "y"]'))
    write_dag(dags, "sub/b.py", dag_file("beta", extra=", is_paused_upon_creation=False"))
    write_dag(dags, "dup.py", dag_file("alpha"))
    safe_mode_words = "# an nbflow DAG file\n"  # files without "DAG" and "nbflow" are not parsed at all
    write_dag(dags, "broken.py", safe_mode_words + "import os\n"
              "raise RuntimeError('password is ' + os.environ['NBFLOW_VAR_DB_PASSWORD'])\n")
    write_dag(dags, "exits.py", safe_mode_words + "import os\nos._exit(3)\n")
    (dags / ".nbflowignore").write_text("(\n")
    an_hour_ago = time.time() - 3600
    for path in dags.rglob("*.py"):
        os.utime(path, (an_hour_ago, an_hour_ago))  # settled files: the racy-mtime rule stays out of the way


def change_folder(dags: Path) -> None:
    (dags / "sub" / "b.py").unlink()
    write_dag(dags, "a.py", dag_file("alpha", tags='["z"]'))
    write_dag(dags, "c.py", dag_file("gamma"))


def settings(dags: Path) -> ProcessorSettings:
    return ProcessorSettings(dags, ParseLimits(timeout=5, processes=2, max_memory_mb=512))


def sqlite_url(path: Path) -> str:
    url = f"sqlite:///{path}"
    init_db(url)
    return url


def stored_rows(url: str) -> dict[str, Any]:
    """The DAG processor's rows without the times they were written at (the two refreshes ran apart)."""
    with session_scope(make_session_factory(make_engine(url))) as session:
        return {"files": {path: (row.mtime, row.size, row.hash, row.import_error)
                          for path, row in stored.dag_files(session).items()},
                "dags": [(row.dag_id, row.fileloc, row.source_hash, row.data)
                         for row in stored.list_serialized_dags(session)]}


@pytest.fixture
def dags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NBFLOW_VAR_DB_PASSWORD", SECRET)
    folder = tmp_path / "dags"
    folder.mkdir()
    fill_folder(folder)
    return folder


def test_refreshes_through_sqlite3_and_through_sqlalchemy_store_the_same_rows(tmp_path: Path, dags: Path) -> None:
    orm_url, fast_url = sqlite_url(tmp_path / "orm.db"), sqlite_url(tmp_path / "fast.db")
    for step in (None, change_folder):
        if step:
            step(dags)
        orm = refresh(make_session_factory(make_engine(orm_url)), settings(dags))
        with open_catalog(str(tmp_path / "fast.db")) as catalog:
            fast = refresh_catalog(catalog, settings(dags))
        assert (fast.parsed, fast.unchanged, fast.removed) == (orm.parsed, orm.unchanged, orm.removed)
        assert stored_rows(fast_url) == stored_rows(orm_url)
    rows = stored_rows(fast_url)
    assert [dag[0] for dag in rows["dags"]] == ["alpha", "gamma"]
    errors = {Path(path).name: error for path, (_, _, _, error) in rows["files"].items() if error}
    assert set(errors) == {"broken.py", "dup.py", "exits.py", ".nbflowignore"}
    assert SECRET not in errors["broken.py"] and "***" in errors["broken.py"]
    assert "exit code 3" in errors["exits.py"] and "defined in both" in errors["dup.py"]


def test_an_unchanged_folder_is_neither_parsed_nor_written_through_sqlite3(tmp_path: Path, dags: Path) -> None:
    sqlite_url(tmp_path / "fast.db")
    with open_catalog(str(tmp_path / "fast.db")) as catalog:
        refresh_catalog(catalog, settings(dags))
    (dags / ".nbflowignore").unlink()  # else its error is recorded again on every refresh, as before
    with open_catalog(str(tmp_path / "fast.db")) as catalog:
        refresh_catalog(catalog, settings(dags))
    with open_catalog(str(tmp_path / "fast.db")) as catalog:
        before = catalog.conn.execute("SELECT * FROM dag_file ORDER BY path").fetchall()  # parsed_at included
        again = refresh_catalog(catalog, settings(dags))
        assert catalog.conn.total_changes == 0
        assert catalog.conn.execute("SELECT * FROM dag_file ORDER BY path").fetchall() == before
    assert again.parsed == () and again.removed == () and again.unchanged == 5


def test_a_file_written_just_now_is_hashed_again_but_not_parsed_again(tmp_path: Path, dags: Path) -> None:
    sqlite_url(tmp_path / "fast.db")
    write_dag(dags, "fresh.py", dag_file("fresh"))  # mtime within the racy window of the first refresh
    with open_catalog(str(tmp_path / "fast.db")) as catalog:
        first = refresh_catalog(catalog, settings(dags))
        again = refresh_catalog(catalog, settings(dags))
    assert str(dags / "fresh.py") in first.parsed and again.parsed == ()


def listing(config_env: dict[str, str], nbflow_env: NbflowEnv) -> list[tuple[Any, ...]]:
    config = load_config(env={**os.environ, **config_env})
    found = api_dags.list_dags(Environment.from_config(config))
    return [(dag.dag_id, dag.file, dag.fileloc, dag.schedule, dag.tags, dag.paused) for dag in found.dags] + \
        [("import errors", found.import_error_count)]


@pytest.fixture
def folder_env(nbflow_env: NbflowEnv, monkeypatch: pytest.MonkeyPatch) -> NbflowEnv:
    monkeypatch.setenv("NBFLOW_VAR_DB_PASSWORD", SECRET)
    fill_folder(nbflow_env.dags)
    return nbflow_env


def test_the_listing_is_the_same_through_sqlite3_sqlalchemy_and_postgres(
        tmp_path: Path, folder_env: NbflowEnv, pg_url: str) -> None:  # noqa: F811 - the imported fixture
    fast_db = tmp_path / "fast.db"
    # `?timeout=30` is a URL only SQLAlchemy reads: the same SQLite database, through the ORM path.
    urls = {"sqlite3": sqlite_url(fast_db), "sqlalchemy": sqlite_url(tmp_path / "orm.db") + "?timeout=30",
            "postgres": pg_url}
    init_db(pg_url)
    listings = {}
    for step in (None, change_folder):
        if step:
            step(folder_env.dags)
        listings = {name: listing({"NBFLOW__DATABASE__SQL_ALCHEMY_CONN": url}, folder_env) for name, url in urls.items()}
        assert listings["sqlite3"] == listings["sqlalchemy"] == listings["postgres"]
    assert listings["sqlite3"] == [
        ("alpha", "a.py", str(folder_env.dags / "a.py"), "@hourly", ("z",), True),
        ("gamma", "c.py", str(folder_env.dags / "c.py"), "@hourly", (), True),
        ("import errors", 4)]
    conn = sqlite3.connect(fast_db)
    try:
        assert conn.execute("SELECT count(*) FROM dag_file").fetchone() == (6,)  # it was stored, not just parsed
    finally:
        conn.close()


def test_the_listing_shows_the_recorded_pause_flag_else_the_default(tmp_path: Path, folder_env: NbflowEnv) -> None:
    url = sqlite_url(tmp_path / "meta.db")
    from nbflow.store import dags as dag_rows
    with session_scope(make_session_factory(make_engine(url))) as session:
        dag_rows.upsert_dag(session, dag_id="alpha", fileloc=str(folder_env.dags / "a.py"), is_paused_at_creation=False)
    paused = {row[0]: row[-1] for row in listing({"NBFLOW__DATABASE__SQL_ALCHEMY_CONN": url}, folder_env)[:-1]}
    assert paused == {"alpha": False, "beta": False}  # alpha: its row; beta: is_paused_upon_creation=False


def test_before_db_init_the_listing_parses_the_folder_and_creates_no_database(
        tmp_path: Path, folder_env: NbflowEnv) -> None:
    url = f"sqlite:///{tmp_path / 'none' / 'nbflow.db'}"
    rows = listing({"NBFLOW__DATABASE__SQL_ALCHEMY_CONN": url}, folder_env)
    assert [row[0] for row in rows] == ["alpha", "beta", "import errors"] and rows[-1] == ("import errors", 4)
    assert not (tmp_path / "none").exists()
