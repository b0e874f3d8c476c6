"""Example secrets backend plugin: connections and variables from one JSON file.

Use it by class path (the plugins folder is searched when the module is not importable):

    # nbflow.toml
    [secrets]
    backends = "env,example_secrets_backend:JsonFileSecretsBackend,metastore"

    [json_secrets]
    path = "secrets.json"   # relative to nbflow.toml's folder

or by the name it registers, `json_file`, once the plugins folder has been loaded. The file:

    {"connections": {"warehouse": "postgres://etl:s3cret@db:5432/wh",
                     "api": {"conn_type": "http", "host": "api.example.com", "password": "t0ken"}},
     "variables": {"region": "eu-west-1", "limits": {"rows": 100}},
     "config": {"smtp_password": "..."}}

The file is read at each lookup, so edits are seen at once (subject to secrets.cache_ttl_seconds).
Everything it returns ("eu-west-1" too) is masked in logs and outputs, as for any backend that is not env or
the metastore; a backend that also holds ordinary values may set `masks_returned_values = False`, and then
only sensitively named variables, passwords and sensitive extras are masked.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nbflow.configuration import Config
from nbflow.exceptions import InvalidSecretError, NbflowConfigException, SecretsBackendUnavailable
from nbflow.secrets.backends.base import BaseSecretsBackend, backends
from nbflow.secrets.connection import Connection


@backends.register("json_file")
class JsonFileSecretsBackend(BaseSecretsBackend):
    """Connections (URI text or field objects), variables and config values from a JSON file."""

    name = "json_file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def from_config(cls, config: Config) -> "JsonFileSecretsBackend":
        if not config.get("json_secrets", "path", ""):
            raise NbflowConfigException("[json_secrets] path is not set; name the JSON file of the json_file "
                                        "secrets backend (NBFLOW__JSON_SECRETS__PATH)")
        return cls(config.path("json_secrets", "path"))

    def describe(self) -> str:
        return f"json_file ({self.path})"

    def _section(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise SecretsBackendUnavailable(self.describe(), "the file does not exist") from err
        except (OSError, json.JSONDecodeError) as err:
            raise SecretsBackendUnavailable(self.describe(), f"cannot read it: {err}") from err
        section = data.get(name, {}) if isinstance(data, dict) else None
        if not isinstance(section, dict):
            raise InvalidSecretError(f"{self.path}: {name!r} must be a JSON object of id → value")
        return section

    def get_connection(self, conn_id: str) -> Connection | None:
        value = self._section("connections").get(conn_id)
        if value is None:
            return None
        if isinstance(value, str):
            return Connection(conn_id=conn_id, uri=value)
        return Connection.from_dict(value, conn_id=conn_id)

    def get_variable(self, key: str) -> str | None:
        return _text(self._section("variables").get(key))

    def get_config(self, key: str) -> str | None:
        return _text(self._section("config").get(key))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)
