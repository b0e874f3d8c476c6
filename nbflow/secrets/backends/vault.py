"""HashiCorp Vault (or OpenBao) KV secrets through hvac, with Airflow's path conventions.

A connection lives at `<mount_point>/<connections_path>/<conn_id>`, either as one `conn_uri` key
or as separate fields (conn_type, host, login, password, schema, port, extra); a variable at
`<variables_path>/<key>` and a config value at `<config_path>/<key>`, both under `value`. An empty
path switches that kind off. Settings come from the `[vault]` section (`NBFLOW__VAULT__URL`, ...).

The client logs in on first use, not when the backend is built, and logs in again once when the
server says the token is no longer good (expired, revoked); requests time out after a few seconds
so that an unreachable server delays a lookup briefly instead of hanging a task.

A key that is not there falls through to the next backend silently; settings that point at the wrong
place (a mount that does not exist, the other KV version, a path the policy denies) fall through too,
but with one warning per problem naming the mount, the path and the fix (vault_mounts.py tells them apart).
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nbflow.exceptions import InvalidSecretError, NbflowConfigException, SecretsBackendMisconfigured, \
    SecretsBackendUnavailable
from nbflow.secrets.backends.base import BaseSecretsBackend, backends
from nbflow.secrets.backends.vault_mounts import MountInfo, diagnose, mount_info
from nbflow.utils.masking import mask_secret

if TYPE_CHECKING:
    import hvac

    from nbflow.configuration import Config
    from nbflow.secrets.connection import Connection

log = logging.getLogger("nbflow.secrets")
T = TypeVar("T")

DEFAULT_TIMEOUT = 3.0
_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n"}


def _token_login(backend: "VaultBackend", client: "hvac.Client") -> None:
    client.token = backend.read_token()


def _approle_login(backend: "VaultBackend", client: "hvac.Client") -> None:
    client.auth.approle.login(role_id=backend.role_id, secret_id=backend.secret_id,
                              mount_point=backend.auth_mount_point or "approle")


def _userpass_login(backend: "VaultBackend", client: "hvac.Client") -> None:
    client.auth.userpass.login(username=backend.username, password=backend.password,
                               mount_point=backend.auth_mount_point or "userpass")


#: auth_type → how to log in, and the settings it needs.
AUTH_METHODS: dict[str, tuple[Callable[["VaultBackend", "hvac.Client"], None], tuple[str, ...]]] = {
    "token": (_token_login, ()),
    "approle": (_approle_login, ("role_id", "secret_id")),
    "userpass": (_userpass_login, ("username", "password")),
}


@backends.register("vault")
class VaultBackend(BaseSecretsBackend):
    """Connections, variables and config values from a Vault KV engine (version 1 or 2)."""

    name = "vault"
    masks_returned_values = True  # everything kept in Vault is a secret, whatever its name

    def __init__(self, url: str, *, auth_type: str = "token", token: str | None = None,
                 token_path: str | None = None, role_id: str | None = None, secret_id: str | None = None,
                 username: str | None = None, password: str | None = None, auth_mount_point: str | None = None,
                 mount_point: str = "secret", kv_engine_version: int = 2, connections_path: str = "connections",
                 variables_path: str = "variables", config_path: str = "config", namespace: str | None = None,
                 verify: bool | str = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not url:
            raise NbflowConfigException("[vault] url is not set; set it (e.g. NBFLOW__VAULT__URL=https://vault:8200) "
                                        "or remove `vault` from secrets.backends")
        if auth_type not in AUTH_METHODS:
            raise NbflowConfigException(f"[vault] auth_type {auth_type!r} is not supported; use one of: "
                                        f"{', '.join(AUTH_METHODS)}")
        if kv_engine_version not in (1, 2):
            raise NbflowConfigException(f"[vault] kv_engine_version {kv_engine_version!r} must be 1 or 2")
        self.url, self.auth_type = url, auth_type
        self.token, self.token_path = token, token_path
        self.role_id, self.secret_id = role_id, secret_id
        self.username, self.password = username, password
        self.auth_mount_point = auth_mount_point
        self.mount_point, self.kv_engine_version = mount_point, kv_engine_version
        self.connections_path = connections_path.strip("/")
        self.variables_path = variables_path.strip("/")
        self.config_path = config_path.strip("/")
        self.namespace, self.verify, self.timeout = namespace, verify, timeout
        missing = [key for key in AUTH_METHODS[auth_type][1] if not getattr(self, key)]
        if auth_type == "token" and not (token or token_path):
            missing = ["token or token_path"]
        if missing:
            raise NbflowConfigException(f"[vault] auth_type {auth_type!r} needs {', '.join(missing)}; set "
                                        f"{' and '.join('NBFLOW__VAULT__' + m.split()[0].upper() for m in missing)}")
        for secret in (token, secret_id, password):
            mask_secret(secret)  # credentials of the backend itself never reach a log either
        self._client: hvac.Client | None = None
        self._lock = threading.Lock()
        self._mounts: dict[str, MountInfo | None] = {}  # what Vault said of the mount, asked once
        self._warned: set[tuple[str, ...]] = set()  # misconfigurations already logged: one warning each

    @classmethod
    def from_config(cls, config: "Config") -> "VaultBackend":
        def text(key: str, default: str | None = None) -> str | None:
            value = config.get("vault", key, default)
            return None if value is None else str(value)

        version_text = text("kv_engine_version", "2") or "2"
        try:
            version = int(version_text)
        except ValueError:
            raise NbflowConfigException(f"[vault] kv_engine_version {version_text!r} must be 1 or 2") from None
        return cls(
            text("url", "") or "", auth_type=(text("auth_type", "token") or "token").lower(),
            token=text("token") or None, token_path=text("token_path") or None,
            role_id=text("role_id") or None, secret_id=text("secret_id") or None,
            username=text("username") or None, password=text("password") or None,
            auth_mount_point=text("auth_mount_point") or None, mount_point=text("mount_point", "secret") or "secret",
            kv_engine_version=version, connections_path=text("connections_path", "connections") or "",
            variables_path=text("variables_path", "variables") or "", config_path=text("config_path", "config") or "",
            namespace=text("namespace") or None, verify=_verify(config.get("vault", "verify", None)),
            timeout=float(text("timeout", str(DEFAULT_TIMEOUT)) or DEFAULT_TIMEOUT))

    def describe(self) -> str:
        return f"vault ({self.url})"

    # -- lookups -------------------------------------------------------------------------------
    def get_connection(self, conn_id: str) -> "Connection | None":
        from nbflow.secrets.connection import Connection

        data = self._read(self.connections_path, conn_id, "connections_path")
        return None if data is None else Connection.from_dict(data, conn_id=conn_id)

    def get_variable(self, key: str) -> str | None:
        return self._value(self.variables_path, key, "variable", "variables_path")

    def get_config(self, key: str) -> str | None:
        return self._value(self.config_path, key, "config value", "config_path")

    def _value(self, base: str, key: str, kind: str, setting: str) -> str | None:
        data = self._read(base, key, setting)
        if data is None:
            return None
        if "value" not in data:
            raise InvalidSecretError(f"vault: the {kind} {key!r} at {self.mount_point}/{base}/{key} has no "
                                     f"'value' key (it has: {', '.join(sorted(data)) or 'nothing'}); store it "
                                     f"as value=...")
        value = data["value"]
        return value if isinstance(value, str) else json.dumps(value)

    def _read(self, base: str, key: str, setting: str) -> dict[str, Any] | None:
        if not base:
            return None  # this kind is switched off
        path = f"{base}/{key}"
        return self._call(lambda client: self._read_path(client, path, setting), f"reading {self.mount_point}/{path}")

    def _read_path(self, client: "hvac.Client", path: str, setting: str) -> dict[str, Any] | None:
        from hvac.exceptions import Forbidden, InvalidPath

        try:
            if self.kv_engine_version == 1:
                return client.secrets.kv.v1.read_secret(path=path, mount_point=self.mount_point)["data"]
            response = client.secrets.kv.v2.read_secret_version(path=path, mount_point=self.mount_point,
                                                                raise_on_deleted_version=True)
            return response["data"]["data"]
        except InvalidPath as err:
            self._warn_if_misconfigured(client, path, setting, refused=False,
                                        no_route="no handler for route" in str(err))
            return None
        except Forbidden:
            # A refused token (expired, revoked) is _call's to handle: it logs in again, or reports the backend
            # unavailable. A token that works but may not read here is a misconfiguration.
            if self._token_works(client) and self._warn_if_misconfigured(client, path, setting, refused=True,
                                                                         no_route=False):
                return None
            raise

    def _warn_if_misconfigured(self, client: "hvac.Client", path: str, setting: str, *, refused: bool,
                               no_route: bool) -> bool:
        """Whether reading `path` found nothing because of our settings; says so once per problem."""
        if self.mount_point not in self._mounts:
            self._mounts[self.mount_point] = None if no_route else mount_info(client, self.mount_point, path)
        found = diagnose(client, mount=self.mount_point, path=path, setting=setting,
                         kv_version=self.kv_engine_version, refused=refused, no_route=no_route,
                         info=self._mounts[self.mount_point])
        if found is None:
            return False
        key = (found.kind, found.mount, setting if found.kind == "permission" else "")
        with self._lock:
            first = key not in self._warned
            self._warned.add(key)
        if first:
            log.warning("%s", SecretsBackendMisconfigured(f"{type(self).__name__} {self.describe()}", found.mount,
                                                          found.path, found.problem, found.fix))
        return True

    @staticmethod
    def _token_works(client: "hvac.Client") -> bool:
        from hvac.exceptions import Forbidden, Unauthorized

        try:
            client.auth.token.lookup_self()
        except (Forbidden, Unauthorized):
            return False
        return True

    # -- the client, logging in and out --------------------------------------------------------
    def read_token(self) -> str:
        """The configured token, or the token file's current content (re-read at each login)."""
        if self.token_path:
            try:
                token = Path(self.token_path).expanduser().read_text(encoding="utf-8").strip()
            except OSError as err:
                raise NbflowConfigException(f"[vault] token_path {self.token_path}: cannot read it ({err})") from err
            mask_secret(token)
            return token
        return self.token or ""

    def _login(self) -> "hvac.Client":
        import hvac

        client = hvac.Client(url=self.url, namespace=self.namespace, verify=self.verify, timeout=self.timeout)
        AUTH_METHODS[self.auth_type][0](self, client)
        mask_secret(client.token)
        return client

    def _authenticated(self, *, fresh: bool = False) -> "hvac.Client":
        with self._lock:
            if fresh or self._client is None:
                self._client = None
                self._client = self._login()
            return self._client

    def _call(self, operation: Callable[["hvac.Client"], T], doing: str) -> T:
        """Run `operation`, logging in again once if the token was refused; errors as SecretsBackendUnavailable."""
        import requests
        from hvac.exceptions import Forbidden, Unauthorized, VaultError

        try:
            try:
                return operation(self._authenticated())
            except (Forbidden, Unauthorized):
                log.info("vault %s: the token was refused while %s; logging in again", self.url, doing)
                return operation(self._authenticated(fresh=True))
        except (Forbidden, Unauthorized) as err:
            raise SecretsBackendUnavailable(
                self.describe(), f"permission denied while {doing} after logging in again ({_first_line(err)})",
                f"check the policy of the {self.auth_type} identity") from err
        except VaultError as err:
            raise SecretsBackendUnavailable(self.describe(), f"{type(err).__name__} while {doing}: "
                                                             f"{_first_line(err)}") from err
        except requests.exceptions.RequestException as err:
            raise SecretsBackendUnavailable(self.describe(), f"cannot reach the server while {doing} "
                                                             f"({type(err).__name__})",
                                            "check [vault] url and that the server is running") from err


def _verify(value: Any) -> bool | str:
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    return text  # a CA bundle path


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
