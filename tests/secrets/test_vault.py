"""The Vault backend against a real OpenBao dev server: KV v1/v2, auth methods, conventions, cache, outages."""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nbflow.configuration import load_config
from nbflow.exceptions import InvalidSecretError, NbflowConfigException, SecretsBackendUnavailable
from nbflow.secrets.backends.env import EnvironmentVariablesBackend
from nbflow.secrets.backends.vault import VaultBackend
from nbflow.secrets.chain import SecretsChain
from nbflow.utils.masking import masker
from tests.secrets.vault_server import KV1_MOUNT, VaultServer


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def token_backend(vault: VaultServer, **kwargs: Any) -> VaultBackend:
    return VaultBackend(vault.url, auth_type="token", token=vault.reader_token(), **kwargs)


def wait_for(predicate: Callable[[], bool], limit: float = 15.0) -> bool:
    """Poll until `predicate()` holds; False if it never did within `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- KV versions and the two connection conventions ---------------------------------------------

@pytest.mark.parametrize("kv_version", [1, 2])
def test_connection_stored_as_conn_uri(vault: VaultServer, kv_version: int) -> None:
    conn_id = unique("wh")
    vault.put_connection(conn_id, "postgres://etl:pw%40x@db.internal:5432/wh?sslmode=require", kv_version=kv_version)
    mount = "secret" if kv_version == 2 else KV1_MOUNT
    conn = token_backend(vault, mount_point=mount, kv_engine_version=kv_version).get_connection(conn_id)
    assert conn is not None
    assert (conn.conn_id, conn.conn_type, conn.login, conn.password, conn.host, conn.port, conn.schema) == (
        conn_id, "postgres", "etl", "pw@x", "db.internal", 5432, "wh")
    assert conn.extra_dejson == {"sslmode": "require"}


@pytest.mark.parametrize("kv_version", [1, 2])
def test_connection_stored_as_separate_fields(vault: VaultServer, kv_version: int) -> None:
    conn_id = unique("api")
    vault.put(f"connections/{conn_id}", {"conn_type": "http", "host": "api.example.com", "login": "bot",
                                         "password": "fields-pw", "port": 8443, "schema": "https",
                                         "extra": {"timeout": 5}}, kv_version=kv_version)
    mount = "secret" if kv_version == 2 else KV1_MOUNT
    conn = token_backend(vault, mount_point=mount, kv_engine_version=kv_version).get_connection(conn_id)
    assert conn is not None
    assert (conn.conn_type, conn.host, conn.login, conn.password, conn.port, conn.schema) == (
        "http", "api.example.com", "bot", "fields-pw", 8443, "https")
    assert conn.extra_dejson == {"timeout": 5}


@pytest.mark.parametrize("kv_version", [1, 2])
def test_variables_and_config_values_under_value(vault: VaultServer, kv_version: int) -> None:
    key = unique("region")
    vault.put_variable(key, "eu-west-1", kv_version=kv_version)
    vault.put(f"config/{key}", {"value": "smtp-secret"}, kv_version=kv_version)
    vault.put(f"variables/{key}_json", {"value": {"rows": 5}}, kv_version=kv_version)
    mount = "secret" if kv_version == 2 else KV1_MOUNT
    backend = token_backend(vault, mount_point=mount, kv_engine_version=kv_version)
    assert backend.get_variable(key) == "eu-west-1"
    assert backend.get_variable(f"{key}_json") == '{"rows": 5}'
    assert backend.get_config(key) == "smtp-secret"


def test_absent_ids_are_none(vault: VaultServer) -> None:
    backend = token_backend(vault)
    assert backend.get_connection(unique("nope")) is None
    assert backend.get_variable(unique("nope")) is None


def test_custom_paths_and_an_empty_path_disables_that_kind(vault: VaultServer) -> None:
    key = unique("k")
    vault.put(f"team/vars/{key}", {"value": "custom-path"})
    vault.put_connection(key, "http://h")
    backend = token_backend(vault, variables_path="team/vars", connections_path="")
    assert backend.get_variable(key) == "custom-path"
    assert backend.get_connection(key) is None


def test_a_variable_without_value_is_a_clear_error(vault: VaultServer) -> None:
    key = unique("bad")
    vault.put(f"variables/{key}", {"val": "typo"})
    with pytest.raises(InvalidSecretError, match=rf"variable '{key}'.*has no 'value' key \(it has: val\)"):
        token_backend(vault).get_variable(key)


# -- authentication ----------------------------------------------------------------------------

def test_approle_login(vault: VaultServer) -> None:
    key = unique("ar")
    vault.put_variable(key, "via-approle")
    role_id, secret_id = vault.enable_approle()
    backend = VaultBackend(vault.url, auth_type="approle", role_id=role_id, secret_id=secret_id)
    assert backend.get_variable(key) == "via-approle"


def test_userpass_login(vault: VaultServer) -> None:
    key = unique("up")
    vault.put_variable(key, "via-userpass")
    vault.enable_userpass("nbflow-user", "userpass-pw-1")
    backend = VaultBackend(vault.url, auth_type="userpass", username="nbflow-user", password="userpass-pw-1")
    assert backend.get_variable(key) == "via-userpass"


def test_token_file_is_read_again_when_the_token_is_refused(vault: VaultServer, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    key = unique("tf")
    vault.put_variable(key, "via-token-file")
    token_file = tmp_path / "token"
    first = vault.reader_token()
    token_file.write_text(first + "\n")
    backend = VaultBackend(vault.url, auth_type="token", token_path=str(token_file))
    assert backend.get_variable(key) == "via-token-file"
    vault.root.auth.token.revoke(first)           # the token expires, an agent writes a new one
    token_file.write_text(vault.reader_token())
    with caplog.at_level(logging.INFO, logger="nbflow.secrets"):
        assert backend.get_variable(key) == "via-token-file"
    assert "the token was refused" in caplog.text and "logging in again" in caplog.text


def test_approle_logs_in_again_when_its_token_is_used_up(vault: VaultServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    key = unique("relogin")
    vault.put_variable(key, "again")
    role_id, secret_id = vault.enable_approle("one-use", token_num_uses=1)
    backend = VaultBackend(vault.url, auth_type="approle", role_id=role_id, secret_id=secret_id)
    with caplog.at_level(logging.INFO, logger="nbflow.secrets"):
        assert [backend.get_variable(key) for _ in range(3)] == ["again"] * 3
    assert caplog.text.count("logging in again") == 2


def test_a_refused_token_without_a_way_to_renew_is_unavailable(vault: VaultServer) -> None:
    backend = VaultBackend(vault.url, auth_type="token", token="not-a-real-token")
    with pytest.raises(SecretsBackendUnavailable, match="permission denied"):
        backend.get_variable("x")


def test_wrong_userpass_credentials_are_unavailable_not_missing(vault: VaultServer) -> None:
    vault.enable_userpass("nbflow-user2", "right-password")
    backend = VaultBackend(vault.url, auth_type="userpass", username="nbflow-user2", password="wrong-password")
    with pytest.raises(SecretsBackendUnavailable, match="vault"):
        backend.get_variable("x")


# -- configuration -------------------------------------------------------------------------------

def test_built_from_the_vault_section_in_the_environment(vault: VaultServer, nbflow_env,  # type: ignore[no-untyped-def]
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    key = unique("cfg")
    vault.put_variable(key, "from-config", kv_version=1)
    role_id, secret_id = vault.enable_approle()
    for name, value in {"URL": vault.url, "AUTH_TYPE": "approle", "ROLE_ID": role_id, "SECRET_ID": secret_id,
                        "MOUNT_POINT": KV1_MOUNT, "KV_ENGINE_VERSION": "1", "VERIFY": "false"}.items():
        monkeypatch.setenv(f"NBFLOW__VAULT__{name}", value)
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env,vault")
    chain = SecretsChain.from_config(load_config())
    assert chain.names == ["env", f"vault ({vault.url})"]
    assert chain.get_variable(key) == "from-config"
    assert masker.redact(f"secret id {secret_id}") == "secret id ***"


@pytest.mark.parametrize(("settings", "message"), [
    ({}, r"\[vault\] url is not set"),
    ({"URL": "http://127.0.0.1:1", "AUTH_TYPE": "kerberos"}, "auth_type 'kerberos' is not supported"),
    ({"URL": "http://127.0.0.1:1", "AUTH_TYPE": "approle"}, "needs role_id, secret_id"),
    ({"URL": "http://127.0.0.1:1"}, "needs token or token_path"),
    ({"URL": "http://127.0.0.1:1", "TOKEN": "t", "KV_ENGINE_VERSION": "3"}, "must be 1 or 2"),
])
def test_bad_vault_settings_are_config_errors(settings: dict[str, str], message: str, nbflow_env,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(f"NBFLOW__VAULT__{name}", value)
    with pytest.raises(NbflowConfigException, match=message):
        VaultBackend.from_config(load_config())


# -- through the chain: cache, masking, outages --------------------------------------------------

def test_a_changed_secret_is_seen_only_after_the_ttl(vault: VaultServer) -> None:
    key = unique("cached")
    vault.put_variable(key, "old")
    chain = SecretsChain([token_backend(vault)], cache_ttl=2.0)
    assert chain.get_variable(key) == "old"
    vault.put_variable(key, "new")
    assert chain.get_variable(key) == "old"  # served from the cache
    assert wait_for(lambda: chain.get_variable(key) == "new")


def test_a_vault_password_fetched_through_the_chain_is_masked(vault: VaultServer) -> None:
    conn_id = unique("masked")
    vault.put_connection(conn_id, "postgres://etl:Vault-Held-Pw-9@db/wh")
    chain = SecretsChain([EnvironmentVariablesBackend(env={}), token_backend(vault)])
    conn = chain.get_connection(conn_id)
    assert conn.password == "Vault-Held-Pw-9"
    assert masker.redact("login etl password Vault-Held-Pw-9") == "login etl password ***"


def test_a_stopped_server_is_skipped_with_one_warning(disposable_vault: VaultServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    vault = disposable_vault
    vault.put_connection("wh", "postgres://etl:pw@vault-host/wh")
    spare = EnvironmentVariablesBackend(env={"NBFLOW_CONN_WH": "postgres://etl:pw@spare-host/wh"})
    chain = SecretsChain([token_backend(vault), spare])
    assert chain.get_connection("wh").host == "vault-host"

    vault.stop()
    with caplog.at_level(logging.WARNING, logger="nbflow.secrets"):
        assert chain.get_connection("wh").host == "spare-host"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "nbflow.secrets"]
    assert len(warnings) == 1
    assert f"vault ({vault.url})" in warnings[0].getMessage() and "cannot reach" in warnings[0].getMessage()


def test_a_stopped_server_fails_the_lookup_when_fail_closed(disposable_vault: VaultServer) -> None:
    vault = disposable_vault
    vault.put_variable("region", "eu")
    spare = EnvironmentVariablesBackend(env={"NBFLOW_VAR_REGION": "us"})
    chain = SecretsChain([token_backend(vault), spare], fail_closed=True)
    assert chain.get_variable("region") == "eu"
    vault.stop()
    with pytest.raises(SecretsBackendUnavailable, match=rf"'vault \({vault.url}\)' is unavailable.*cannot reach"
                                                        r".*variable 'region'.*fail_closed"):
        chain.get_variable("region")
