"""Connection and variable rows for the secrets layer's metastore backend.

Values are stored exactly as given: the secrets layer encrypts before writing and decrypts after
reading (it owns the Fernet key), and sets the `is_encrypted` flags to match. Every function
takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nbflow.store._sql import rowcount, upsert
from nbflow.store.models import ConnectionORM, VariableORM, table_of
from nbflow.store.rows import ConnectionRow, VariableRow

CONNECTION = table_of(ConnectionORM)
VARIABLE = table_of(VariableORM)


def get_connection_row(session: Session, conn_id: str) -> ConnectionRow | None:
    """The stored connection, or None."""
    found = session.execute(select(CONNECTION).where(CONNECTION.c.conn_id == conn_id)).mappings().first()
    return ConnectionRow.from_mapping(found) if found else None


def list_connection_rows(session: Session) -> list[ConnectionRow]:
    """Every stored connection, by conn_id."""
    stmt = select(CONNECTION).order_by(CONNECTION.c.conn_id)
    return [ConnectionRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def set_connection_row(session: Session, conn_id: str, conn_type: str, *, description: str | None = None,
                       host: str | None = None, schema: str | None = None, login: str | None = None,
                       password: str | None = None, port: int | None = None, extra: str | None = None,
                       is_encrypted: bool = False, is_extra_encrypted: bool = False) -> ConnectionRow:
    """Create or replace the connection `conn_id` (every column is overwritten)."""
    values: dict[str, Any] = {
        "conn_id": conn_id, "conn_type": conn_type, "description": description, "host": host, "schema": schema,
        "login": login, "password": password, "port": port, "extra": extra, "is_encrypted": is_encrypted,
        "is_extra_encrypted": is_extra_encrypted}
    upsert(session, CONNECTION, values, conflict=["conn_id"], update=[k for k in values if k != "conn_id"])
    stmt = select(CONNECTION).where(CONNECTION.c.conn_id == conn_id)
    return ConnectionRow.from_mapping(session.execute(stmt).mappings().one())


def delete_connection_row(session: Session, conn_id: str) -> bool:
    """Delete a connection; whether it existed."""
    result = session.execute(delete(CONNECTION).where(CONNECTION.c.conn_id == conn_id))
    return rowcount(result) == 1


def get_variable_row(session: Session, key: str) -> VariableRow | None:
    """The stored variable, or None."""
    found = session.execute(select(VARIABLE).where(VARIABLE.c.key == key)).mappings().first()
    return VariableRow.from_mapping(found) if found else None


def list_variable_rows(session: Session) -> list[VariableRow]:
    """Every stored variable, by key."""
    return [VariableRow.from_mapping(m) for m in session.execute(select(VARIABLE).order_by(VARIABLE.c.key)).mappings()]


def set_variable_row(session: Session, key: str, val: str | None, *, description: str | None = None,
                     is_encrypted: bool = False) -> VariableRow:
    """Create or replace the variable `key`."""
    values = {"key": key, "val": val, "description": description, "is_encrypted": is_encrypted}
    upsert(session, VARIABLE, values, conflict=["key"], update=("val", "description", "is_encrypted"))
    return VariableRow.from_mapping(session.execute(select(VARIABLE).where(VARIABLE.c.key == key)).mappings().one())


def delete_variable_row(session: Session, key: str) -> bool:
    """Delete a variable; whether it existed."""
    return rowcount(session.execute(delete(VARIABLE).where(VARIABLE.c.key == key))) == 1
