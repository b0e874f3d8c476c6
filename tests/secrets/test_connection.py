"""Connection: Airflow's URI form both ways, the JSON form, extras."""
from __future__ import annotations

import json

import pytest

from nbflow.exceptions import InvalidConnectionError
from nbflow.secrets.connection import Connection


@pytest.mark.parametrize("uri", [
    "postgres://etl:s3cret@db.example.com:5432/warehouse",
    "postgres://us%40er:p%2Fa%3As%23s@db:5432/wh?sslmode=require&application_name=nbflow",
    "mysql://root@localhost/app",
    "http://https://user:pw@api.example.com:443/v1",
    "google-cloud-platform://?key_path=%2Fkeys%2Fsa.json",
    "aws://@:443",
])
def test_uri_survives_a_round_trip(uri: str) -> None:
    conn = Connection(conn_id="c", uri=uri)
    again = Connection(conn_id="c", uri=conn.get_uri())
    assert again == conn


def test_uri_parts_are_percent_decoded() -> None:
    conn = Connection.from_uri("postgresql://us%40er:p%2Fa%3As%23s@db.example.com:6543/my%20db?sslmode=require")
    assert (conn.conn_type, conn.login, conn.password) == ("postgres", "us@er", "p/a:s#s")
    assert (conn.host, conn.port, conn.schema) == ("db.example.com", 6543, "my db")
    assert conn.extra_dejson == {"sslmode": "require"}


def test_get_uri_percent_encodes_every_part() -> None:
    conn = Connection(conn_id="c", conn_type="postgres", login="us@er", password="p/a:s#s?", host="db",
                      port=5432, schema="my db")
    assert conn.get_uri() == "postgres://us%40er:p%2Fa%3As%23s%3F@db:5432/my%20db"


def test_conn_type_underscores_become_hyphens_in_the_uri_and_back() -> None:
    conn = Connection(conn_id="c", conn_type="google_cloud_platform", host="h")
    assert conn.get_uri().startswith("google-cloud-platform://")
    assert Connection(uri=conn.get_uri()).conn_type == "google_cloud_platform"


def test_non_string_extras_travel_in_the_extra_parameter() -> None:
    extra = {"retries": 3, "verify": False, "scopes": ["a", "b"], "nested": {"k": "v"}}
    conn = Connection(conn_id="c", conn_type="http", host="api", extra=extra)
    uri = conn.get_uri()
    assert "__extra__=" in uri
    assert Connection(uri=uri).extra_dejson == extra


def test_flat_string_extras_become_query_parameters() -> None:
    conn = Connection(conn_id="c", conn_type="postgres", host="db", schema="wh", extra={"sslmode": "verify-full"})
    assert conn.get_uri() == "postgres://db/wh?sslmode=verify-full"


def test_percent_encoded_path_as_host_is_kept_whole() -> None:
    conn = Connection(uri="sqlite://%2Ftmp%2Fdata%2Fapp.db")
    assert conn.host == "/tmp/data/app.db"
    assert Connection(uri=conn.get_uri()).host == "/tmp/data/app.db"


def test_json_form_round_trip_keeps_every_field() -> None:
    conn = Connection(conn_id="api", conn_type="http", description="the API", host="api.example.com",
                      login="me", password="pw", schema="https", port=8443, extra={"timeout": 5})
    data = json.loads(conn.as_json())
    assert "conn_id" not in data and data["extra"] == {"timeout": 5}
    assert Connection.from_json(conn.as_json(), conn_id="api") == conn


def test_from_json_accepts_extra_as_text_and_port_as_string() -> None:
    conn = Connection.from_json('{"conn_type": "postgresql", "host": "db", "port": "5433", '
                                '"extra": "{\\"sslmode\\": \\"disable\\"}"}', conn_id="db")
    assert (conn.conn_type, conn.port, conn.extra_dejson) == ("postgres", 5433, {"sslmode": "disable"})


def test_from_dict_takes_a_conn_uri() -> None:
    conn = Connection.from_dict({"conn_uri": "sqlite://%2Ftmp%2Fx.db"}, conn_id="lite")
    assert (conn.conn_id, conn.conn_type, conn.host) == ("lite", "sqlite", "/tmp/x.db")


@pytest.mark.parametrize(("text", "fragment"), [
    ('{"conn_type": "http", "hots": "x"}', "unknown field(s) hots"),
    ('{"conn_type": "http", "port": "eighty"}', "port 'eighty' is not an integer"),
    ('{"conn_type": "http",', "not valid JSON"),
    ('["http"]', "expected a JSON object"),
])
def test_bad_json_names_the_connection_and_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InvalidConnectionError, match="connection 'api'") as info:
        Connection.from_json(text, conn_id="api")
    assert fragment in str(info.value)


def test_bad_uri_is_an_error_that_hides_the_password() -> None:
    with pytest.raises(InvalidConnectionError) as info:
        Connection(conn_id="db", uri="postgres://u:hunter22@db:notaport/x")
    assert "invalid port" in str(info.value) and "hunter22" not in str(info.value)
    with pytest.raises(InvalidConnectionError, match="not a connection URI"):
        Connection(conn_id="db", uri="just-a-host")


def test_uri_and_fields_together_are_refused() -> None:
    with pytest.raises(InvalidConnectionError, match="either uri or the separate fields"):
        Connection(conn_id="db", uri="postgres://db", host="other")


def test_extra_dejson_is_empty_for_invalid_extra() -> None:
    assert Connection(conn_id="c", extra="not json").extra_dejson == {}
    assert Connection(conn_id="c", extra='{"a": 1}').get_extra() == '{"a": 1}'


def test_repr_hides_the_password() -> None:
    assert "hunter22" not in repr(Connection(conn_id="c", conn_type="http", password="hunter22"))


def test_test_connection_without_a_registered_tester_says_so() -> None:
    ok, message = Connection(conn_id="c", conn_type="nosuchtype").test_connection()
    assert not ok and "nosuchtype" in message
