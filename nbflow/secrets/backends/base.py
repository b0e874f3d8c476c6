"""What every secrets backend answers: a connection, a variable or a config value by id, or None."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from nbflow.exceptions import NbflowConfigException
from nbflow.utils.registry import Registry

if TYPE_CHECKING:
    from typing import Self

    from nbflow.configuration import Config
    from nbflow.secrets.connection import Connection

#: Secrets backend classes by name: the built-ins, then the `nbflow.secrets_backends` entry points,
#: then whatever a plugin module registers with `@backends.register(name)`.
backends: Registry[type["BaseSecretsBackend"]] = Registry("secrets backend", entry_points="nbflow.secrets_backends")

#: Built-in name → the module that registers it, imported on first use so that `import nbflow.secrets`
#: stays free of SQLAlchemy, cryptography and hvac.
BUILTIN_MODULES = {
    "env": "nbflow.secrets.backends.env",
    "metastore": "nbflow.secrets.backends.metastore",
    "vault": "nbflow.secrets.backends.vault",
}


class BaseSecretsBackend:
    """A source of connections, variables and config values (Airflow's BaseSecretsBackend).

    Each lookup returns None when this backend does not hold the id, so the chain asks the next
    one. A backend that cannot be reached raises SecretsBackendUnavailable; the chain then warns
    and goes on, or fails when `secrets.fail_closed` is set.
    """

    #: The name the chain uses in warnings and errors; the registry name for built-ins.
    name: ClassVar[str] = "custom"
    #: Whether the chain may keep this backend's answers for `secrets.cache_ttl_seconds`.
    cacheable: ClassVar[bool] = True
    #: Whether everything this backend returns is a secret to mask: every variable's value, and of a
    #: connection its password, sensitive extras and its whole URI. True for a secrets store (Vault, a custom
    #: or plugin backend: what a user keeps there is secret by choice). The backends that hold ordinary
    #: values too (env, metastore) set False: of those only sensitively named variables are masked, as in
    #: Airflow, or every variable would be ***.
    masks_returned_values: ClassVar[bool] = True

    @classmethod
    def from_config(cls, config: "Config") -> "Self":
        """Build from configuration; by default with the JSON object in `secrets.backend_kwargs`."""
        raw = config.get("secrets", "backend_kwargs", "")
        try:
            kwargs: Any = json.loads(raw) if isinstance(raw, str) and raw.strip() else (raw or {})
        except json.JSONDecodeError as err:
            raise NbflowConfigException(f"[secrets] backend_kwargs is not valid JSON ({err.msg}); "
                                        f"give a JSON object such as '{{\"path\": \"secrets.json\"}}'") from None
        if not isinstance(kwargs, dict):
            raise NbflowConfigException("[secrets] backend_kwargs must be a JSON object")
        return cls(**kwargs)

    def get_conn_value(self, conn_id: str) -> str | None:
        """The stored text (URI or JSON) of connection `conn_id`, for backends that store text."""
        return None

    def get_connection(self, conn_id: str) -> "Connection | None":
        """Connection `conn_id`, or None when this backend does not hold it."""
        from nbflow.secrets.connection import Connection

        value = self.get_conn_value(conn_id)
        if value is None:
            return None
        value = value.strip()
        if value.startswith("{"):
            return Connection.from_json(value, conn_id=conn_id)
        return Connection(conn_id=conn_id, uri=value)

    def get_variable(self, key: str) -> str | None:
        """Variable `key` as text, or None when this backend does not hold it."""
        return None

    def get_config(self, key: str) -> str | None:
        """Configuration value `key`, or None (only some backends hold config)."""
        return None

    def describe(self) -> str:
        """How this backend is named in messages."""
        return self.name
