"""The DAG processor's tables through stdlib sqlite3: the same rows as through SQLAlchemy, both ways."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from nbflow.store import dags as dag_rows
from nbflow.store import serialized_dags as stored
from nbflow.store.catalog import CatalogWrites, FileDags, FileRecord, ListedDag
from nbflow.store.engine import make_engine, make_session_factory, session_scope
from nbflow.store.migrate import init_db
from nbflow.store.revision import newest_revision
from nbflow.store.sqlite_catalog import SqliteCatalog, database_file, open_catalog
from tests.store.conftest import Db

AT = dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.timezone.utc)


def dag_json(dag_id: str, fileloc: str, *, schedule: str | None = "@daily", tags: list[str] | None = None,
             paused: bool | None = None) -> str:
    return json.dumps({"dag_id": dag_id, "fileloc": fileloc, "timetable": {"kind": "cron", "summary": schedule},
                       "tags": tags or [], "is_paused_upon_creation": paused, "tasks": [{"task_id": "é→ü"}]})


def file_dags(path: str, *texts: str) -> FileDags:
    return FileDags(path, f"hash-{path}", tuple(json.loads(text)["dag_id"] for text in texts), texts)


# What a first refresh writes: two files with DAGs, one broken file, one invalid ignore file.
FIRST = CatalogWrites(
    at=AT,
    replaced=(file_dags("/d/a.py", dag_json("a1", "/d/a.py", tags=["x", "y"]), dag_json("a2", "/d/a.py", paused=False)),
              file_dags("/d/b.py", dag_json("b", "/d/b.py", schedule=None, paused=True))),
    records=(FileRecord("/d/a.py", 1_700_000_000_123_456_789, 10, "hash-/d/a.py", None),
             FileRecord("/d/b.py", 1_700_000_000_000_000_001, 20, "hash-/d/b.py", None),
             FileRecord("/d/bad.py", 5, 30, "hash-bad", "/d/bad.py: ZeroDivisionError: ***"),
             FileRecord("/d/.nbflowignore", 0, 0, "", "/d/.nbflowignore:1: '(' is not a valid regular expression")))

# A later refresh: a.py no longer defines a2, b.py is gone, bad.py only touched.
SECOND = CatalogWrites(
    at=AT + dt.timedelta(seconds=5),
    touched=(("/d/bad.py", 6, 30),),
    removed=("/d/b.py",),
    replaced=(file_dags("/d/a.py", dag_json("a1", "/d/a.py", tags=["x"])),),
    records=(FileRecord("/d/a.py", 1_700_000_001_000_000_000, 11, "hash-2", None),))


def sqlite_db(path: Path) -> str:
    url = f"sqlite:///{path}"
    init_db(url)
    with session_scope(make_session_factory(make_engine(url))) as session:  # the scheduler's rows
        for dag_id, fileloc in (("a1", "/d/a.py"), ("a2", "/d/a.py"), ("b", "/d/b.py"), ("other", "/e/o.py")):
            dag_rows.upsert_dag(session, dag_id=dag_id, fileloc=fileloc, is_paused_at_creation=dag_id != "a1",
                                last_parsed_time=AT)
    return url


def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the three tables, as SQLite holds them (text, numbers): to compare byte for byte."""
    conn = sqlite3.connect(database_file(url) or "")
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("dag_file", "serialized_dag", "dag")}
    finally:
        conn.close()


def apply_with_sqlalchemy(url: str, writes: CatalogWrites) -> None:
    stored.SessionCatalog(make_session_factory(make_engine(url))).update(lambda owners: writes)


def apply_with_sqlite3(url: str, writes: CatalogWrites) -> None:
    with open_catalog(database_file(url) or "") as catalog:
        catalog.update(lambda owners: writes)


def test_database_file_takes_plain_sqlite_urls_and_leaves_the_rest_to_sqlalchemy() -> None:
    assert database_file("sqlite:////abs/nbflow.db") == "/abs/nbflow.db"
    assert database_file("sqlite:///rel/nbflow.db") == "rel/nbflow.db"
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///x.db?timeout=5", "sqlite:///a%20b.db",
                "sqlite:///~/x.db", "sqlite+pysqlite:////abs/x.db", "postgresql://u@h/db"):
        assert database_file(url) is None, url


def test_open_catalog_before_db_init_is_none_and_creates_no_file(tmp_path: Path) -> None:
    assert open_catalog(str(tmp_path / "nbflow.db")) is None
    assert not (tmp_path / "nbflow.db").exists()


def test_open_catalog_of_a_database_behind_the_newest_migration_is_none(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "old.db")
    conn = sqlite3.connect(tmp_path / "old.db")
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    conn.close()
    assert newest_revision() != "0001"
    assert open_catalog(database_file(url) or "") is None


def test_both_writers_leave_the_same_rows_byte_for_byte(tmp_path: Path) -> None:
    orm_url, fast_url = sqlite_db(tmp_path / "orm.db"), sqlite_db(tmp_path / "fast.db")
    for writes in (FIRST, SECOND):
        apply_with_sqlalchemy(orm_url, writes)
        apply_with_sqlite3(fast_url, writes)
        assert table_rows(fast_url) == table_rows(orm_url)
    rows = table_rows(fast_url)
    assert [row[0] for row in rows["serialized_dag"]] == ["a1"]  # a2 dropped by its file, b's file removed
    assert {row[0]: row[3] for row in rows["dag"]} == {"a1": 1, "a2": 0, "b": 0, "other": 1}  # is_active


def test_what_sqlalchemy_wrote_reads_the_same_through_sqlite3(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "meta.db")
    apply_with_sqlalchemy(url, FIRST)
    sessions = make_session_factory(make_engine(url))
    with session_scope(sessions) as session, open_catalog(database_file(url) or "") as fast:
        assert fast.dag_files() == stored.SessionCatalog(sessions).dag_files()
        assert fast.owners() == stored.owners(session)
        assert fast.import_errors() == stored.import_errors(session)
        assert fast.paused_flags() == {row.dag_id: row.is_paused
                                       for row in dag_rows.list_dags(session, include_inactive=True)}
        assert fast.serialized_dags() == stored.list_serialized_dags(session)
        assert fast.listed_dags() == [ListedDag.from_data(row.data) for row in stored.list_serialized_dags(session)]
        assert fast.listed_dags()[0] == ListedDag("a1", "/d/a.py", "@daily", ("x", "y"), None)


def test_the_owners_given_to_decide_are_read_inside_the_write_transaction(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "meta.db")
    seen: list[dict[str, str]] = []
    with open_catalog(database_file(url) or "") as catalog:
        catalog.update(lambda owners: FIRST)
        catalog.update(lambda owners: seen.append(owners) or CatalogWrites(at=AT))
    assert seen == [{"a1": "/d/a.py", "a2": "/d/a.py", "b": "/d/b.py"}]


def test_a_failing_decision_writes_nothing(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "meta.db")
    before = table_rows(url)

    def decide(owners: dict[str, str]) -> CatalogWrites:
        raise RuntimeError("no")

    with open_catalog(database_file(url) or "") as catalog, pytest.raises(RuntimeError):
        catalog.update(decide)
    with open_catalog(database_file(url) or "") as catalog:
        catalog.update(lambda owners: FIRST)  # the connection and the database are usable again
    assert before["serialized_dag"] == [] and table_rows(url)["serialized_dag"]


def test_postgres_through_sqlalchemy_holds_what_sqlite_through_sqlite3_holds(tmp_path: Path, pg_url: str) -> None:
    init_db(pg_url)
    engine = make_engine(pg_url)
    try:
        pg = Db(pg_url, engine, make_session_factory(engine))
        with pg.tx() as session:
            for dag_id, fileloc in (("a1", "/d/a.py"), ("a2", "/d/a.py"), ("b", "/d/b.py"), ("other", "/e/o.py")):
                dag_rows.upsert_dag(session, dag_id=dag_id, fileloc=fileloc, is_paused_at_creation=dag_id != "a1")
        fast_url = sqlite_db(tmp_path / "fast.db")
        for writes in (FIRST, SECOND):
            stored.SessionCatalog(pg.factory).update(lambda owners, writes=writes: writes)
            apply_with_sqlite3(fast_url, writes)
        with pg.tx() as session, open_catalog(database_file(fast_url) or "") as fast:
            assert fast.dag_files() == stored.SessionCatalog(pg.factory).dag_files()
            assert fast.serialized_dags() == stored.list_serialized_dags(session)
            assert fast.import_errors() == stored.import_errors(session)
            assert fast.paused_flags() == {row.dag_id: row.is_paused
                                           for row in dag_rows.list_dags(session, include_inactive=True)}
            assert {row.dag_id: row.is_active for row in dag_rows.list_dags(session, include_inactive=True)} == \
                {"a1": True, "a2": False, "b": False, "other": True}
    finally:
        engine.dispose()


def test_the_catalog_is_read_without_importing_sqlalchemy(tmp_path: Path) -> None:
    import subprocess
    import sys
    url = sqlite_db(tmp_path / "meta.db")
    apply_with_sqlalchemy(url, FIRST)
    code = ("import sys; from nbflow.store.sqlite_catalog import open_catalog; "
            f"c = open_catalog({database_file(url)!r}); print(len(c.listed_dags()), len(c.dag_files())); "
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["3 4", "[]"]


def test_a_catalog_closes_its_connection(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "meta.db")
    catalog = open_catalog(database_file(url) or "")
    assert isinstance(catalog, SqliteCatalog)
    with catalog:
        pass
    with pytest.raises(sqlite3.ProgrammingError):
        catalog.conn.execute("SELECT 1")
