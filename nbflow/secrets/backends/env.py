"""Connections and variables from the process environment: NBFLOW_CONN_<ID> and NBFLOW_VAR_<KEY>."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from nbflow.secrets.backends.base import BaseSecretsBackend, backends

if TYPE_CHECKING:
    from nbflow.configuration import Config

CONN_ENV_PREFIX = "NBFLOW_CONN_"
VAR_ENV_PREFIX = "NBFLOW_VAR_"


@backends.register("env")
class EnvironmentVariablesBackend(BaseSecretsBackend):
    """Reads `NBFLOW_CONN_<CONN_ID>` (a URI or a JSON object) and `NBFLOW_VAR_<KEY>`, ids upper-cased.

    The environment is read at each lookup, so a variable exported after the chain was built is
    seen; that is also why the chain never caches this backend.
    """

    name = "env"
    masks_returned_values = False  # NBFLOW_VAR_* are ordinary settings too: the name rule decides (Airflow's)
    cacheable = False

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env

    @classmethod
    def from_config(cls, config: "Config") -> "EnvironmentVariablesBackend":
        return cls()

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    def get_conn_value(self, conn_id: str) -> str | None:
        return self.env.get(CONN_ENV_PREFIX + conn_id.upper())

    def get_variable(self, key: str) -> str | None:
        return self.env.get(VAR_ENV_PREFIX + key.upper())
