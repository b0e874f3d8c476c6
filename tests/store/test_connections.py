"""Connection and variable rows, stored as the secrets layer gives them."""
from __future__ import annotations

from nbflow.store.connections import (
    delete_connection_row,
    delete_variable_row,
    get_connection_row,
    get_variable_row,
    list_connection_rows,
    list_variable_rows,
    set_connection_row,
    set_variable_row,
)

from .conftest import Db


def test_connection_rows_are_created_replaced_listed_and_deleted(db: Db) -> None:
    with db.tx() as s:
        set_connection_row(s, "wh", "postgres", host="db", login="etl", password="gAAAA-encrypted", port=5432,
                           is_encrypted=True)
        row = set_connection_row(s, "wh", "postgres", host="db2", extra='{"sslmode": "require"}')
        set_connection_row(s, "api", "http")
    assert (row.host, row.password, row.port, row.extra, row.is_encrypted) == (
        "db2", None, None, '{"sslmode": "require"}', False)
    with db.tx() as s:
        assert [c.conn_id for c in list_connection_rows(s)] == ["api", "wh"]
        assert delete_connection_row(s, "api") and not delete_connection_row(s, "api")
        assert get_connection_row(s, "api") is None


def test_variable_rows_are_created_replaced_listed_and_deleted(db: Db) -> None:
    with db.tx() as s:
        set_variable_row(s, "token", "gAAAA", is_encrypted=True, description="api token")
        set_variable_row(s, "day", "3")
        set_variable_row(s, "day", "4")
    with db.tx() as s:
        day = get_variable_row(s, "day")
        token = get_variable_row(s, "token")
        assert [v.key for v in list_variable_rows(s)] == ["day", "token"]
        assert delete_variable_row(s, "day") and get_variable_row(s, "day") is None
    assert day is not None and (day.val, day.is_encrypted) == ("4", False)
    assert token is not None and (token.val, token.is_encrypted, token.description) == ("gAAAA", True, "api token")
