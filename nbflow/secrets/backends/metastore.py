"""Connections and variables in the metadata database, passwords, extras and values Fernet-encrypted.

The rows are read and written by nbflow.store.connections, which stores text as given; this
module owns the Fernet key, so it encrypts before writing and decrypts after reading. The engine
and the key are made on first use: building the backend opens nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbflow.exceptions import (
    DatabaseUnavailableError,
    SecretsBackendUnavailable,
    UndecryptableSecretError,
)
from nbflow.secrets.backends.base import BaseSecretsBackend, backends

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from nbflow.configuration import Config
    from nbflow.secrets.connection import Connection
    from nbflow.store.rows import ConnectionRow

log = logging.getLogger("nbflow.secrets")


@dataclass(frozen=True, slots=True)
class VariableRecord:
    """One stored variable, decrypted."""

    key: str
    value: str | None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RotationResult:
    """How many stored values `rotate_fernet_key` re-encrypted with the first key."""

    connections: int
    variables: int


def _encrypt(fernet: "MultiFernet", value: str | None) -> str | None:
    return None if value is None else fernet.encrypt(value.encode("utf-8")).decode("ascii")


def _decrypt(fernet: "MultiFernet", value: str | None, encrypted: bool, what: str, field: str) -> str | None:
    from cryptography.fernet import InvalidToken

    if value is None or not encrypted:
        return value
    try:
        return fernet.decrypt(value.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise UndecryptableSecretError(what, field) from None


def _unavailable(err: Exception) -> SecretsBackendUnavailable:
    text = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
    lowered = text.lower()
    hint = ""
    if "no such table" in lowered or "does not exist" in lowered:
        hint = "the metadata database has no connection/variable tables yet; run `nbflow db init`"
    return SecretsBackendUnavailable("metastore", text, hint)


@backends.register("metastore")
class MetastoreBackend(BaseSecretsBackend):
    """The `connection` and `variable` tables of the metadata database; also where writes go."""

    name = "metastore"
    masks_returned_values = False  # holds ordinary variables too: the name rule decides (Airflow's)
    # Airflow does not cache the metastore either: writes land here, and a cached old value
    # would hide a `Variable.set` from the same process.
    cacheable = False

    def __init__(self, engine: "Engine | str", fernet: "MultiFernet | Callable[[], MultiFernet]") -> None:
        self._engine_or_url = engine
        self._fernet_or_factory = fernet
        self._engine: Engine | None = None
        self._fernet: MultiFernet | None = None

    @classmethod
    def from_config(cls, config: "Config") -> "MetastoreBackend":
        from nbflow.secrets.fernet import fernet_from_config

        return cls(config.sql_alchemy_conn, lambda: fernet_from_config(config))

    # -- lazily made resources ---------------------------------------------------------------
    @property
    def engine(self) -> "Engine":
        if self._engine is None:
            if isinstance(self._engine_or_url, str):
                from nbflow.store.engine import make_engine

                self._engine = make_engine(self._engine_or_url)
            else:
                self._engine = self._engine_or_url
        return self._engine

    @property
    def fernet(self) -> "MultiFernet":
        if self._fernet is None:
            source = self._fernet_or_factory
            self._fernet = source() if callable(source) else source
        return self._fernet

    @contextmanager
    def _transaction(self) -> Iterator["Session"]:
        from sqlalchemy.exc import DBAPIError
        from sqlalchemy.orm import Session

        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except DBAPIError as err:
            raise _unavailable(err) from err
        except DatabaseUnavailableError as err:
            raise SecretsBackendUnavailable("metastore", str(err)) from err

    # -- lookups -------------------------------------------------------------------------------
    def get_connection(self, conn_id: str) -> "Connection | None":
        from nbflow.store.connections import get_connection_row

        with self._transaction() as session:
            row = get_connection_row(session, conn_id)
        return None if row is None else self._to_connection(row)

    def _to_connection(self, row: "ConnectionRow") -> "Connection":
        from nbflow.secrets.connection import Connection

        what = f"connection {row.conn_id!r}"
        return Connection(
            conn_id=row.conn_id, conn_type=row.conn_type, description=row.description, host=row.host,
            schema=row.schema, login=row.login, port=row.port,
            password=_decrypt(self.fernet, row.password, row.is_encrypted, what, "password"),
            extra=_decrypt(self.fernet, row.extra, row.is_extra_encrypted, what, "extra"))

    def get_variable(self, key: str) -> str | None:
        from nbflow.store.connections import get_variable_row

        with self._transaction() as session:
            row = get_variable_row(session, key)
        return None if row is None else _decrypt(self.fernet, row.val, row.is_encrypted, f"variable {key!r}", "value")

    def list_connections(self) -> list["Connection"]:
        """Every stored connection, decrypted, by conn_id."""
        from nbflow.store.connections import list_connection_rows

        with self._transaction() as session:
            rows = list_connection_rows(session)
        return [self._to_connection(row) for row in rows]

    def list_variables(self) -> list[VariableRecord]:
        """Every stored variable, decrypted, by key."""
        from nbflow.store.connections import list_variable_rows

        with self._transaction() as session:
            rows = list_variable_rows(session)
        return [VariableRecord(row.key, _decrypt(self.fernet, row.val, row.is_encrypted, f"variable {row.key!r}",
                                                 "value"), row.description)
                for row in rows]

    # -- writes --------------------------------------------------------------------------------
    def set_connection(self, conn: "Connection") -> None:
        """Insert or replace connection `conn.conn_id`, password and extra encrypted."""
        from nbflow.store.connections import set_connection_row

        if not conn.conn_id:
            raise ValueError("a stored connection needs a conn_id")
        with self._transaction() as session:
            set_connection_row(
                session, conn.conn_id, conn.conn_type or "", description=conn.description, host=conn.host,
                schema=conn.schema, login=conn.login, port=conn.port,
                password=_encrypt(self.fernet, conn.password), is_encrypted=conn.password is not None,
                extra=_encrypt(self.fernet, conn.extra), is_extra_encrypted=conn.extra is not None)

    def delete_connection(self, conn_id: str) -> bool:
        """Remove connection `conn_id`; False when there was none."""
        from nbflow.store.connections import delete_connection_row

        with self._transaction() as session:
            return delete_connection_row(session, conn_id)

    def set_variable(self, key: str, value: str, description: str | None = None) -> None:
        """Insert or replace variable `key`, its value encrypted; keeps the description unless given."""
        from nbflow.store.connections import get_variable_row, set_variable_row

        with self._transaction() as session:
            if description is None:
                existing = get_variable_row(session, key)
                description = existing.description if existing else None
            set_variable_row(session, key, _encrypt(self.fernet, value), description=description, is_encrypted=True)

    def delete_variable(self, key: str) -> bool:
        """Remove variable `key`; False when there was none."""
        from nbflow.store.connections import delete_variable_row

        with self._transaction() as session:
            return delete_variable_row(session, key)


def rotate_fernet_key(engine: "Engine", fernet: "MultiFernet | str") -> RotationResult:
    """Re-encrypt every stored password, extra and variable value with the first key, in one transaction.

    `fernet` is the MultiFernet (or the comma-separated keys) holding the new key first and every
    old key after it. Values stored in plain text are encrypted too. A value no key decrypts
    raises UndecryptableSecretError naming it, and nothing is changed.
    """
    from cryptography.fernet import InvalidToken

    from nbflow.secrets.fernet import load_fernet

    multi = load_fernet(fernet) if isinstance(fernet, str) else fernet

    def rotated(value: str | None, encrypted: bool, what: str, field: str) -> str | None:
        if value is None:
            return None
        if not encrypted:
            return _encrypt(multi, value)
        try:
            return multi.rotate(value.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UndecryptableSecretError(what, field) from None

    from sqlalchemy.orm import Session

    from nbflow.store import connections as rows

    counts = [0, 0]
    with Session(engine) as session, session.begin():
        for row in rows.list_connection_rows(session):
            what = f"connection {row.conn_id!r}"
            password = rotated(row.password, row.is_encrypted, what, "password")
            extra = rotated(row.extra, row.is_extra_encrypted, what, "extra")
            rows.set_connection_row(
                session, row.conn_id, row.conn_type, description=row.description, host=row.host, schema=row.schema,
                login=row.login, port=row.port, password=password, is_encrypted=password is not None,
                extra=extra, is_extra_encrypted=extra is not None)
            counts[0] += 1
        for var in rows.list_variable_rows(session):
            val = rotated(var.val, var.is_encrypted, f"variable {var.key!r}", "value")
            rows.set_variable_row(session, var.key, val, description=var.description, is_encrypted=val is not None)
            counts[1] += 1
    log.info("re-encrypted %d connection(s) and %d variable(s) with the first Fernet key", *counts)
    return RotationResult(connections=counts[0], variables=counts[1])
