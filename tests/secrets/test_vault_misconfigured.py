"""A Vault backend whose settings point at the wrong place says so once, and lookups go on to the next backend.

Against a real OpenBao dev server: a mount that does not exist, a KV mount of the other version and a
path the token's policy denies each give one warning on `nbflow.secrets` naming the backend, the mount
and the path; a key that simply is not there gives none.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from nbflow.secrets.backends.env import EnvironmentVariablesBackend
from nbflow.secrets.backends.vault import VaultBackend
from nbflow.secrets.chain import SecretsChain
from tests.secrets.vault_server import KV1_MOUNT, VaultServer

REGION = "eu-central-9"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def key() -> str:
    """A variable name of this test's own (the dev server is shared by the session)."""
    return unique("region")


def chain_with(vault_backend: VaultBackend, key: str) -> SecretsChain:
    """Vault first, then the environment, which holds the variable `key`."""
    return SecretsChain([vault_backend, EnvironmentVariablesBackend(env={f"NBFLOW_VAR_{key.upper()}": REGION})])


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "nbflow.secrets"]


def backend(vault: VaultServer, token: str, **settings: Any) -> VaultBackend:
    return VaultBackend(vault.url, auth_type="token", token=token, **settings)


@pytest.mark.parametrize("who", ["root", "reader"])
def test_a_wrong_mount_point_is_one_warning_naming_mount_and_path_and_the_lookup_falls_through(
        vault: VaultServer, caplog: pytest.LogCaptureFixture, key: str, who: str) -> None:
    # Vault tells a root token "no handler for route"; a narrower token only hears "permission denied".
    token = vault.root_token if who == "root" else vault.reader_token()
    mount = unique("nosuch")
    chain = chain_with(backend(vault, token, mount_point=mount), key)
    with caplog.at_level(logging.WARNING, logger="nbflow.secrets"):
        assert chain.get_variable(key) == REGION
    said = warnings(caplog)
    assert len(said) == 1
    assert "VaultBackend" in said[0] and vault.url in said[0]
    assert f"mount point {mount!r}" in said[0] and f"{mount}/variables/{key}" in said[0]
    assert "mount_point" in said[0] and "fall through" in said[0]


def test_a_kv1_mount_configured_as_kv2_is_one_warning(vault: VaultServer, caplog: pytest.LogCaptureFixture,
                                                      key: str) -> None:
    vault.put_variable(key, "from-vault", kv_version=1)
    chain = chain_with(backend(vault, vault.reader_token(), mount_point=KV1_MOUNT, kv_engine_version=2), key)
    with caplog.at_level(logging.WARNING, logger="nbflow.secrets"):
        assert chain.get_variable(key) == REGION
    said = warnings(caplog)
    assert len(said) == 1
    assert f"mount point {KV1_MOUNT!r}" in said[0] and f"{KV1_MOUNT}/variables/{key}" in said[0]
    assert "KV version 1" in said[0] and "NBFLOW__VAULT__KV_ENGINE_VERSION=1" in said[0]


def test_a_kv2_mount_configured_as_kv1_is_one_warning(vault: VaultServer, caplog: pytest.LogCaptureFixture,
                                                      key: str) -> None:
    vault.put_variable(key, "from-vault", kv_version=2)
    chain = chain_with(backend(vault, vault.reader_token(), mount_point="secret", kv_engine_version=1), key)
    with caplog.at_level(logging.WARNING, logger="nbflow.secrets"):
        assert chain.get_variable(key) == REGION
    said = warnings(caplog)
    assert len(said) == 1
    assert "mount point 'secret'" in said[0] and f"secret/variables/{key}" in said[0]
    assert "KV version 2" in said[0] and "NBFLOW__VAULT__KV_ENGINE_VERSION=2" in said[0]


def test_a_path_the_tokens_policy_denies_is_one_warning(vault: VaultServer, caplog: pytest.LogCaptureFixture,
                                                        key: str) -> None:
    vault.put_variable(key, "from-vault")
    token = vault.token_with_policy('path "secret/data/*" { capabilities = ["read"] }\n'
                                    'path "secret/data/variables/*" { capabilities = ["deny"] }')
    chain = chain_with(backend(vault, token), key)
    with caplog.at_level(logging.WARNING, logger="nbflow.secrets"):
        assert chain.get_variable(key) == REGION
    said = warnings(caplog)
    assert len(said) == 1
    assert "mount point 'secret'" in said[0] and f"secret/variables/{key}" in said[0]
    assert "permission denied" in said[0] and f"secret/data/variables/{key}" in said[0]


@pytest.mark.parametrize("kv_version", [1, 2])
def test_a_missing_key_on_a_correct_mount_falls_through_without_a_warning(
        vault: VaultServer, caplog: pytest.LogCaptureFixture, key: str, kv_version: int) -> None:
    mount = KV1_MOUNT if kv_version == 1 else "secret"
    chain = chain_with(backend(vault, vault.reader_token(), mount_point=mount, kv_engine_version=kv_version), key)
    with caplog.at_level(logging.DEBUG, logger="nbflow.secrets"):
        assert chain.get_variable(key) == REGION
        assert chain.find_connection(unique("absent")) is None
    assert warnings(caplog) == []


def test_repeated_lookups_of_a_misconfigured_backend_still_warn_once(vault: VaultServer,
                                                                     caplog: pytest.LogCaptureFixture, key: str) -> None:
    chain = chain_with(backend(vault, vault.reader_token(), mount_point=unique("nosuch")), key)
    with caplog.at_level(logging.WARNING, logger="nbflow.secrets"):
        for _ in range(5):
            assert chain.get_variable(key) == REGION
            assert chain.get_variable(unique("other"), default=None) is None
            assert chain.find_connection(unique("conn")) is None
    assert len(warnings(caplog)) == 1
