"""The metastore backend on a real SQLite file and a real Postgres schema: Fernet at rest, rotation."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from nbflow.configuration import load_config
from nbflow.exceptions import SecretsBackendUnavailable, UndecryptableSecretError
from nbflow.secrets.backends.metastore import MetastoreBackend, VariableRecord, rotate_fernet_key
from nbflow.secrets.connection import Connection
from nbflow.secrets.fernet import ensure_fernet_key, load_fernet
from nbflow.store.engine import make_engine

PASSWORD = "pa55-w0rd-at-rest"


def _backend(url: str, keys: str) -> MetastoreBackend:
    return MetastoreBackend(make_engine(url), load_fernet(keys))


def _raw(url: str, sql: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.execute(text(sql))]
    finally:
        engine.dispose()


def test_connection_round_trip_is_encrypted_at_rest(db_url: str) -> None:
    backend = _backend(db_url, Fernet.generate_key().decode())
    conn = Connection(conn_id="wh", conn_type="postgres", host="db", login="etl", password=PASSWORD, port=5432,
                      schema="wh", extra={"sslmode": "require", "api_token": "xyz-extra-secret"},
                      description="warehouse")
    backend.set_connection(conn)
    assert backend.get_connection("wh") == conn
    [(password, extra, is_encrypted, is_extra_encrypted)] = _raw(
        db_url, "SELECT password, extra, is_encrypted, is_extra_encrypted FROM connection WHERE conn_id = 'wh'")
    assert PASSWORD not in password and "xyz-extra-secret" not in extra
    assert is_encrypted and is_extra_encrypted


def test_variable_round_trip_is_encrypted_at_rest(db_url: str) -> None:
    backend = _backend(db_url, Fernet.generate_key().decode())
    backend.set_variable("api_key", "k-123456", description="the key")
    assert backend.get_variable("api_key") == "k-123456"
    [(val, is_encrypted)] = _raw(db_url, "SELECT val, is_encrypted FROM variable WHERE key = 'api_key'")
    assert "k-123456" not in val and is_encrypted
    backend.set_variable("api_key", "k-654321")
    assert backend.list_variables() == [VariableRecord("api_key", "k-654321", "the key")]


def test_set_replaces_and_delete_removes(db_url: str) -> None:
    backend = _backend(db_url, Fernet.generate_key().decode())
    backend.set_connection(Connection(conn_id="a", conn_type="http", host="one"))
    backend.set_connection(Connection(conn_id="a", conn_type="http", host="two"))
    assert [c.host for c in backend.list_connections()] == ["two"]
    assert backend.delete_connection("a") and not backend.delete_connection("a")
    assert backend.get_connection("a") is None
    backend.set_variable("v", "1")
    assert backend.delete_variable("v") and backend.get_variable("v") is None


def test_rotation_re_encrypts_with_the_first_key(db_url: str) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = _backend(db_url, old)
    before.set_connection(Connection(conn_id="wh", conn_type="postgres", host="db", password=PASSWORD,
                                     extra={"k": "v"}))
    before.set_variable("secret_var", "s3cret-value")

    result = rotate_fernet_key(make_engine(db_url), f"{new},{old}")

    assert (result.connections, result.variables) == (1, 1)
    after = _backend(db_url, new)  # the old key is gone: only the new one must be needed now
    assert after.get_connection("wh").password == PASSWORD  # type: ignore[union-attr]
    assert after.get_connection("wh").extra_dejson == {"k": "v"}  # type: ignore[union-attr]
    assert after.get_variable("secret_var") == "s3cret-value"


def test_rotation_encrypts_plain_text_rows(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.begin() as db:
        db.execute(text("INSERT INTO variable (key, val, is_encrypted) VALUES ('legacy', 'plain', 0)"))
    key = Fernet.generate_key().decode()
    rotate_fernet_key(engine, key)
    [(val, is_encrypted)] = _raw(sqlite_url, "SELECT val, is_encrypted FROM variable")
    assert val != "plain" and is_encrypted
    assert _backend(sqlite_url, key).get_variable("legacy") == "plain"


def test_plain_text_rows_are_read_as_they_are(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.begin() as db:
        db.execute(text("INSERT INTO connection (conn_id, conn_type, password, is_encrypted, is_extra_encrypted) "
                        "VALUES ('old', 'http', 'plainpw', 0, 0)"))
    assert _backend(sqlite_url, Fernet.generate_key().decode()).get_connection("old").password == "plainpw"  # type: ignore[union-attr]


def test_a_value_no_key_decrypts_is_a_clear_error(db_url: str) -> None:
    _backend(db_url, Fernet.generate_key().decode()).set_connection(
        Connection(conn_id="wh", conn_type="postgres", password=PASSWORD))
    _backend(db_url, Fernet.generate_key().decode()).set_variable("token_x", "abc")
    stranger = _backend(db_url, Fernet.generate_key().decode())
    with pytest.raises(UndecryptableSecretError, match=r"connection 'wh': the stored password cannot be decrypted"):
        stranger.get_connection("wh")
    with pytest.raises(UndecryptableSecretError, match=r"variable 'token_x'.*core.fernet_key"):
        stranger.get_variable("token_x")


def test_rotation_with_a_missing_old_key_fails_and_changes_nothing(sqlite_url: str) -> None:
    old = Fernet.generate_key().decode()
    _backend(sqlite_url, old).set_variable("a", "1")
    _backend(sqlite_url, old).set_variable("b", "2")
    before = _raw(sqlite_url, "SELECT key, val FROM variable ORDER BY key")
    with pytest.raises(UndecryptableSecretError, match="variable 'a'"):
        rotate_fernet_key(make_engine(sqlite_url), Fernet.generate_key().decode())
    assert _raw(sqlite_url, "SELECT key, val FROM variable ORDER BY key") == before


def test_a_database_without_tables_is_unavailable_with_a_hint(tmp_path: Path) -> None:
    backend = _backend(f"sqlite:///{tmp_path / 'empty.db'}", Fernet.generate_key().decode())
    with pytest.raises(SecretsBackendUnavailable, match="metastore.*nbflow db init"):
        backend.get_variable("x")


def test_building_from_config_opens_nothing(nbflow_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    MetastoreBackend.from_config(load_config())
    assert not nbflow_env.home.exists()


def test_fernet_key_is_generated_once_into_home_and_read_back(nbflow_env) -> None:  # type: ignore[no-untyped-def]
    config = load_config()
    key = ensure_fernet_key(config)
    key_file = nbflow_env.home / "fernet.key"
    assert key_file.read_text().strip() == key
    assert key_file.stat().st_mode & 0o077 == 0
    assert ensure_fernet_key(load_config()) == key
    load_fernet(key)  # a valid key


def test_configured_fernet_key_wins(nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("NBFLOW__CORE__FERNET_KEY", key)
    assert ensure_fernet_key(load_config()) == key
    assert not (nbflow_env.home / "fernet.key").exists()


def test_an_invalid_fernet_key_names_its_position() -> None:
    from nbflow.exceptions import NbflowConfigException

    with pytest.raises(NbflowConfigException, match="key 2 of 2 is not a Fernet key"):
        load_fernet(f"{Fernet.generate_key().decode()},not-a-key")


def test_metastore_from_config_uses_the_generated_key(nbflow_env) -> None:  # type: ignore[no-untyped-def]
    from nbflow.store.migrate import init_db

    config = load_config()
    init_db(config.sql_alchemy_conn)
    MetastoreBackend.from_config(config).set_variable("k", "v")
    key = (nbflow_env.home / "fernet.key").read_text().strip()
    assert MetastoreBackend(make_engine(config.sql_alchemy_conn), load_fernet(key)).get_variable("k") == "v"
