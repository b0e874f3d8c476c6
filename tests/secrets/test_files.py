"""Connections and variables as JSON, YAML and env files (what `connections|variables import|export` use)."""
from __future__ import annotations

import json

import pytest
import yaml

from nbflow.exceptions import InvalidSecretError
from nbflow.secrets.connection import Connection
from nbflow.secrets.files import (
    connections_from_text,
    connections_to_text,
    format_of,
    variables_from_text,
    variables_to_text,
)

CONNS = [
    Connection(conn_id="wh", conn_type="postgres", host="db", login="etl", password="File-Pw-1", port=5432,
               schema="wh", extra={"sslmode": "require", "api_token": "File-Tok-2"}),
    Connection(conn_id="api", conn_type="http", host="api.example.com", description="the API"),
]


@pytest.mark.parametrize("fmt", ["json", "yaml", "env"])
def test_connections_survive_export_and_import(fmt: str) -> None:
    text = connections_to_text(CONNS, fmt, show_secrets=True)
    again = connections_from_text(text, fmt)
    if fmt == "env":  # the URI form has no description
        assert [c.get_uri() for c in again] == [c.get_uri() for c in CONNS]
    else:
        assert again == CONNS


@pytest.mark.parametrize("fmt", ["json", "yaml", "env"])
def test_exported_connections_hide_secrets_unless_asked(fmt: str) -> None:
    text = connections_to_text(CONNS, fmt)
    assert "File-Pw-1" not in text and "File-Tok-2" not in text and "***" in text
    assert "sslmode" in text and "require" in text


def test_import_accepts_uris_fields_and_conn_uri() -> None:
    text = json.dumps({"a": "sqlite://%2Ftmp%2Fa.db", "b": {"conn_uri": "http://h:81"},
                       "c": {"conn_type": "http", "host": "c", "extra": '{"x": 1}'}})
    conns = {c.conn_id: c for c in connections_from_text(text, "json")}
    assert (conns["a"].host, conns["b"].port, conns["c"].extra_dejson) == ("/tmp/a.db", 81, {"x": 1})


def test_variables_round_trip_with_json_values() -> None:
    variables = {"region": "eu", "limits": '{"rows": 10}', "db_password": "Var-File-Pw"}
    for fmt in ("json", "yaml", "env"):
        assert variables_from_text(variables_to_text(variables, fmt, show_secrets=True), fmt) == (
            variables if fmt == "env" else {**variables, "limits": json.dumps({"rows": 10})})
    shown = yaml.safe_load(variables_to_text(variables, "yaml"))
    assert shown == {"region": "eu", "limits": {"rows": 10}, "db_password": "***"}


@pytest.mark.parametrize(("text", "fmt", "message"), [
    ("{", "json", "wh.json: not valid JSON"),
    ("[1, 2]", "json", "expected an object"),
    ("a: [", "yaml", "not valid YAML"),
    ("# comment\nno-equals-sign", "env", "line 2: expected ID=VALUE"),
    ('{"x": 5}', "json", "connection 'x' must be a URI string or an object"),
])
def test_bad_files_name_the_source_and_the_problem(text: str, fmt: str, message: str) -> None:
    with pytest.raises(InvalidSecretError, match=message):
        connections_from_text(text, fmt, source="wh.json")


def test_format_from_the_suffix() -> None:
    assert [format_of(p) for p in ("a.json", "a.YAML", "a.yml", "a.env")] == ["json", "yaml", "yaml", "env"]
    with pytest.raises(InvalidSecretError, match="cannot tell the format"):
        format_of("a.txt")
    assert format_of("a.txt", "env") == "env"
