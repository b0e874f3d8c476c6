"""Whether a database is at the newest migration, without importing Alembic (~0.1 s of every listing).

`nbflow.store.migrate.check_db` says the same with Alembic's own machinery and explains problems;
this is the fast yes/no the read-only commands ask before every run. SQLAlchemy is imported inside
the functions that need it: `newest_revision` also serves `sqlite_catalog`, which must not load it.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"


@functools.cache
def newest_revision() -> str:
    """The newest migration's revision id: migration files are named `<revision>_<what>.py`, numbered."""
    return max(path.name.split("_", 1)[0] for path in VERSIONS_DIR.glob("[0-9]*_*.py"))


def database_file_missing(url: str) -> bool:
    """True for a SQLite URL whose file does not exist (connecting would create it)."""
    from sqlalchemy.engine import make_url
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not os.path.exists(parsed.database)


def at_newest_revision(session: "Session") -> bool:
    """Whether the session's database answers and records the newest revision; never raises."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError
    try:
        found = session.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:
        return False
    return found == [newest_revision()]
