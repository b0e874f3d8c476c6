"""`nbflow connections add|get|list|delete` on a real SQLite file: encrypted at rest, masked unless asked."""
from __future__ import annotations


import pytest
from cryptography.fernet import Fernet

from tests.cli.conftest import Cli, raw_rows

PASSWORD = "s3cr3t-pa55word"
URI = f"postgresql://etl:{PASSWORD}@db.example:5432/wh?sslmode=require&api_token=tok-extra-1234"


@pytest.fixture
def cli(initialised: Cli) -> Cli:
    return initialised


def test_add_from_a_uri_stores_the_password_and_extra_encrypted(cli: Cli) -> None:
    done = cli("connections", "add", "wh", "--conn-uri", URI, "--conn-description", "warehouse")
    assert done.code == 0, done.err
    assert "added connection 'wh'" in done.err and done.out == ""
    [(password, extra, is_encrypted, is_extra_encrypted)] = raw_rows(
        cli.env.home, "SELECT password, extra, is_encrypted, is_extra_encrypted FROM connection WHERE conn_id = 'wh'")
    assert PASSWORD not in password and "tok-extra-1234" not in extra
    assert is_encrypted and is_extra_encrypted
    key = (cli.env.home / "fernet.key").read_text().strip()  # generated into NBFLOW_HOME on first use
    assert Fernet(key.encode()).decrypt(password.encode()).decode() == PASSWORD


def test_get_hides_the_password_and_sensitive_extras(cli: Cli) -> None:
    assert cli("connections", "add", "wh", "--conn-uri", URI).code == 0
    table = cli("connections", "get", "wh")
    assert table.code == 0, table.err
    assert PASSWORD not in table.out and "tok-extra-1234" not in table.out
    assert "password     ***" in table.out and "postgres://etl:***@db.example:5432/wh" in table.out
    shown = cli("connections", "get", "wh", "--output", "json").json()
    assert shown["password"] == "***" and shown["extra"] == {"sslmode": "require", "api_token": "***"}
    assert (shown["conn_type"], shown["host"], shown["port"], shown["schema"], shown["login"]) == (
        "postgres", "db.example", 5432, "wh", "etl")


def test_get_with_show_secrets_prints_the_real_values(cli: Cli) -> None:
    assert cli("connections", "add", "wh", "--conn-uri", URI).code == 0
    shown = cli("connections", "get", "wh", "--output", "json", "--show-secrets").json()
    assert shown["password"] == PASSWORD and shown["extra"]["api_token"] == "tok-extra-1234"
    assert shown["uri"] == "postgres://etl:s3cr3t-pa55word@db.example:5432/wh?sslmode=require&api_token=tok-extra-1234"
    table = cli("connections", "get", "wh", "--show-secrets")
    assert f"password     {PASSWORD}" in table.out


def test_add_from_separate_fields_and_from_json(cli: Cli) -> None:
    done = cli("connections", "add", "api", "--conn-type", "http", "--conn-host", "example.com", "--conn-port",
               "8443", "--conn-login", "bot", "--conn-password", "hunter22", "--conn-schema", "https",
               "--conn-extra", '{"timeout": 5}', "--conn-description", "the API")
    assert done.code == 0, done.err
    fields = cli("connections", "get", "api", "-o", "json", "--show-secrets").json()
    assert {k: fields[k] for k in ("conn_type", "host", "port", "login", "password", "schema", "extra",
                                   "description")} == {
        "conn_type": "http", "host": "example.com", "port": 8443, "login": "bot", "password": "hunter22",
        "schema": "https", "extra": {"timeout": 5}, "description": "the API"}
    done = cli("connections", "add", "js", "--conn-json",
               '{"conn_type": "postgres", "host": "pg", "password": "pw-in-json", "extra": {"sslmode": "off"}}')
    assert done.code == 0, done.err
    fields = cli("connections", "get", "js", "-o", "json", "--show-secrets").json()
    assert (fields["conn_type"], fields["host"], fields["password"], fields["extra"]) == (
        "postgres", "pg", "pw-in-json", {"sslmode": "off"})


def test_adding_an_existing_connection_fails_and_keeps_the_first(cli: Cli) -> None:
    assert cli("connections", "add", "wh", "--conn-uri", URI).code == 0
    again = cli("connections", "add", "wh", "--conn-uri", "http://other")
    assert again.code == 1
    assert again.error_line == "error: connection 'wh' already exists; delete it first " \
                               "(`nbflow connections delete wh`)"
    assert cli("connections", "get", "wh", "-o", "json").json()["host"] == "db.example"


def test_a_bad_uri_is_a_one_line_error(cli: Cli) -> None:
    done = cli("connections", "add", "x", "--conn-uri", "not a uri")
    assert done.code == 1 and done.out == ""
    assert done.err.strip() == ("error: --conn-uri: connection 'x': 'not a uri' is not a connection URI; expected "
                                "type://login:password@host:port/schema?param=value")
    port = cli("connections", "add", "x", "--conn-uri", "http://h:notaport/db")
    assert port.code == 1 and "has an invalid port" in port.error_line and "Traceback" not in port.err


def test_bad_json_says_where_it_broke(cli: Cli) -> None:
    done = cli("connections", "add", "x", "--conn-json", '{"conn_type": "http",, "host": "h"}')
    assert done.code == 1
    assert done.error_line.startswith("error: --conn-json is not valid JSON (line 1, column 22: expecting property "
                                      "name enclosed in double quotes)")
    extra = cli("connections", "add", "x", "--conn-type", "http", "--conn-extra", '{"a": 1')
    assert extra.code == 1 and extra.error_line.startswith(
        "error: --conn-extra is not valid JSON (line 1, column 8: expecting ',')")
    not_object = cli("connections", "add", "x", "--conn-json", "[1, 2]")
    assert not_object.code == 1 and not_object.error_line == "error: --conn-json must be a JSON object, got a list"


def test_add_needs_one_way_of_describing_the_connection(cli: Cli) -> None:
    nothing = cli("connections", "add", "x")
    assert nothing.code == 1 and "needs --conn-uri, --conn-json, or --conn-type" in nothing.error_line
    both = cli("connections", "add", "x", "--conn-uri", "http://h", "--conn-json", "{}")
    assert both.code == 1 and both.error_line == "error: give either --conn-uri or --conn-json, not both"
    mixed = cli("connections", "add", "x", "--conn-uri", "http://h", "--conn-host", "other")
    assert mixed.code == 1 and "leave out --conn-host" in mixed.error_line
    port = cli("connections", "add", "x", "--conn-type", "http", "--conn-port", "eighty")
    assert port.code == 1 and "port 'eighty' is not an integer" in port.error_line


def test_an_unknown_conn_id_names_the_backends_searched(cli: Cli) -> None:
    done = cli("connections", "get", "nope")
    assert done.code == 1 and done.out == ""
    assert done.error_line.startswith("error: connection 'nope' is not defined; searched env, metastore;")


def test_an_environment_connection_is_visible_to_get_and_masked(cli: Cli) -> None:
    env = {"NBFLOW_CONN_FROM_ENV": "mysql://app:env-pa55word@mysql.local:3306/shop"}
    done = cli("connections", "get", "from_env", "-o", "json", extra_env=env)
    assert done.code == 0, done.err
    shown = done.json()
    assert (shown["conn_type"], shown["host"], shown["password"]) == ("mysql", "mysql.local", "***")
    assert "env-pa55word" not in done.out
    revealed = cli("connections", "get", "from_env", "-o", "json", "--show-secrets", extra_env=env).json()
    assert revealed["password"] == "env-pa55word"
    # It is not stored, so list (the metadata database) does not show it and delete cannot remove it.
    assert cli("connections", "list", "-o", "json", extra_env=env).json() == []
    gone = cli("connections", "delete", "from_env", extra_env=env)
    assert gone.code == 1 and "comes from another secrets backend (e.g. NBFLOW_CONN_FROM_ENV)" in gone.error_line


def test_adding_a_connection_the_environment_shadows_warns(cli: Cli) -> None:
    env = {"NBFLOW_CONN_WH": "http://from-env"}
    done = cli("connections", "add", "wh", "--conn-uri", URI, extra_env=env)
    assert done.code == 0, done.err
    assert ("warning: connection 'wh' is also defined in secrets backend 'env', which comes first in "
            "secrets.backends;") in done.err
    assert cli("connections", "get", "wh", "-o", "json", extra_env=env).json()["host"] == "from-env"
    assert cli("connections", "get", "wh", "-o", "json").json()["host"] == "db.example"


def test_list_shows_every_stored_connection_with_passwords_hidden(cli: Cli) -> None:
    assert cli("connections", "add", "wh", "--conn-uri", URI).code == 0
    assert cli("connections", "add", "api", "--conn-type", "http", "--conn-host", "h", "--conn-password",
               "api-pa55").code == 0
    table = cli("connections", "list")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == ["conn_id", "conn_type", "host", "port", "schema", "login", "password", "description"]
    assert [line.split()[0] for line in lines[2:]] == ["api", "wh"]
    assert PASSWORD not in table.out and "api-pa55" not in table.out and table.out.count("***") == 2
    rows = cli("connections", "list", "-o", "json").json()
    assert [(row["conn_id"], row["password"]) for row in rows] == [("api", "***"), ("wh", "***")]
    rows = cli("connections", "list", "-o", "json", "--show-secrets").json()
    assert [row["password"] for row in rows] == ["api-pa55", PASSWORD]


def test_list_when_nothing_is_stored(cli: Cli) -> None:
    done = cli("connections", "list")
    assert done.code == 0 and done.out == "" and "no connections stored in the metadata database" in done.err
    assert cli("connections", "list", "-o", "json").json() == []


def test_delete_removes_a_connection_and_a_second_delete_fails(cli: Cli) -> None:
    assert cli("connections", "add", "wh", "--conn-uri", URI).code == 0
    done = cli("connections", "delete", "wh")
    assert done.code == 0 and "deleted connection 'wh'" in done.err
    assert raw_rows(cli.env.home, "SELECT conn_id FROM connection") == []
    again = cli("connections", "delete", "wh")
    assert again.code == 1 and again.error_line == "error: connection 'wh' is not stored in the metadata database"


def test_a_password_no_configured_key_decrypts_is_a_clear_error(cli: Cli) -> None:
    assert cli("connections", "add", "wh", "--conn-uri", URI).code == 0
    other_key = {"NBFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()}
    for args in (("get", "wh"), ("list",)):
        done = cli("connections", *args, extra_env=other_key)
        assert done.code == 1 and done.out == "" and "Traceback" not in done.err
        assert done.error_line.startswith("error: connection 'wh': the stored password cannot be decrypted with any "
                                          "key in core.fernet_key;")


def test_before_db_init_the_error_says_to_run_it(nbflow: Cli) -> None:
    done = nbflow("connections", "add", "wh", "--conn-uri", URI)
    assert done.code == 1
    assert done.error_line.startswith("error: secrets backend 'metastore' is unavailable: no such table: connection")
    assert done.error_line.endswith("run `nbflow db init`")
