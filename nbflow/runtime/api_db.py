"""The metadata database's schema and secrets key, as use cases: check, init, upgrade, reset, rotate.

Part of the door `nbflow.runtime.api` (re-exported there); interfaces import it from there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nbflow.exceptions import DatabaseNotReady, MetadataDatabaseError
from nbflow.runtime.environment import Environment

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from nbflow.store.migrate import DbStatus


@dataclass(frozen=True, slots=True)
class FernetKeyStatus:
    """Where the key that encrypts stored secrets lives, and whether it was generated just now."""

    path: Path
    generated: bool


@dataclass(frozen=True, slots=True)
class FernetRotation:
    """What `rotate_fernet_key` re-encrypted, and with how many configured keys."""

    connections: int
    variables: int
    keys: int
    xcoms: int = 0


def database_url(env: Environment) -> str:
    """The metadata database's URL with its password hidden: the only form an interface may print."""
    from nbflow.store.engine import safe_url
    return safe_url(env.config.sql_alchemy_conn)


def check_database(env: Environment) -> "DbStatus":
    """Whether the database answers and is at the newest revision; never raises for a bad database."""
    from nbflow.store.migrate import check_db
    return check_db(env.config.sql_alchemy_conn)


def require_database(env: Environment, *, initialised: bool = True) -> None:
    """DatabaseNotReady when the database cannot be reached (or, with `initialised`, is not set up)."""
    if not initialised and env.config.sql_alchemy_conn.startswith("sqlite"):
        return  # `db init` creates the file
    status = check_database(env)
    if not status.reachable:
        raise DatabaseNotReady(f"metadata database {status.url} is unreachable: {status.error}", url=status.url)
    if initialised and not status.at_head:
        raise DatabaseNotReady(f"metadata database {status.url} is not initialised (revision "
                               f"{status.current_revision or 'none'}); run `nbflow db init`", url=status.url)


def _prepare_home(env: Environment) -> None:
    if env.config.sql_alchemy_conn.startswith("sqlite"):  # the database file goes into $NBFLOW_HOME
        env.config.home.mkdir(parents=True, exist_ok=True)


def init_database(env: Environment) -> "DbStatus":
    """Create the schema (or upgrade it) and the default pool."""
    from nbflow.store.migrate import init_db
    _prepare_home(env)
    return init_db(env.config.sql_alchemy_conn)


def upgrade_database(env: Environment) -> "DbStatus":
    """Upgrade the schema to the newest revision."""
    from nbflow.store.migrate import upgrade_db
    _prepare_home(env)
    return upgrade_db(env.config.sql_alchemy_conn)


def reset_database(env: Environment) -> "DbStatus":
    """Drop every nbflow table and its data, then initialise afresh (callers confirm first)."""
    from nbflow.store.migrate import reset_db
    _prepare_home(env)
    return reset_db(env.config.sql_alchemy_conn)


def ensure_fernet_key(env: Environment) -> FernetKeyStatus:
    """Make sure stored secrets have a key (core.fernet_key, else one generated into $NBFLOW_HOME)."""
    from nbflow.secrets.fernet import ensure_fernet_key as ensure, key_file
    path = key_file(env.config)
    generating = not str(env.config.get("core", "fernet_key") or "").strip() and not path.exists()
    ensure(env.config)
    return FernetKeyStatus(path=path, generated=generating)


def rotate_fernet_key(env: Environment) -> FernetRotation:
    """Re-encrypt every stored secret with the first key of core.fernet_key, in one transaction."""
    from sqlalchemy.exc import DBAPIError

    from nbflow.secrets.backends.metastore import rotate_fernet_key as rotate
    from nbflow.secrets.fernet import ensure_fernet_key as ensure, load_fernet
    from nbflow.store.engine import make_engine, safe_url

    conf = env.config
    keys = [key for key in ensure(conf).split(",") if key.strip()]
    fernet = load_fernet(",".join(keys))
    engine = make_engine(conf.sql_alchemy_conn)
    try:
        result = rotate(engine, fernet)
        xcoms = _rotate_xcoms(engine, fernet, encrypt=conf.getboolean("core", "encrypt_xcom"))
    except DBAPIError as err:
        problem = str(err.orig or err).strip().splitlines()[0]
        hint = ("; run `nbflow db init` first" if "no such table" in problem.lower() or "does not exist" in
                problem.lower() else "")
        raise MetadataDatabaseError(f"cannot rotate the Fernet key in {safe_url(conf.sql_alchemy_conn)}: "
                                    f"{problem}{hint}") from None
    finally:
        engine.dispose()
    return FernetRotation(connections=result.connections, variables=result.variables, keys=len(keys), xcoms=xcoms)


def _rotate_xcoms(engine: "Engine", fernet: object, *, encrypt: bool) -> int:
    """Encrypted XComs re-encrypted with the first key (and plain ones encrypted under core.encrypt_xcom)."""
    from sqlalchemy.orm import Session

    from nbflow.runtime.xcom_encryption import reencrypt_xcoms

    with Session(engine) as session, session.begin():
        return reencrypt_xcoms(session, fernet, encrypt=encrypt)
