"""BaseHook: how operators reach an external system, with credentials from the secrets chain."""
from __future__ import annotations

import importlib
import logging
from typing import Any, ClassVar

from nbflow.secrets.connection import Connection
from nbflow.utils.registry import Registry

#: conn_type → hook class, for `BaseHook.get_hook(conn_id)`; entry point group `nbflow.hooks`.
hooks: Registry[type["BaseHook"]] = Registry("hook", entry_points="nbflow.hooks")

#: Built-in conn_types and the module that registers their hook, imported on first use.
BUILTIN_HOOK_MODULES = {"sqlite": "nbflow.hooks.sql", "postgres": "nbflow.hooks.sql", "postgresql": "nbflow.hooks.sql"}


class BaseHook:
    """Airflow's BaseHook: `get_connection(conn_id)` for subclasses, `get_conn()` for their clients."""

    #: The keyword under which a subclass takes its connection id (Airflow: e.g. `postgres_conn_id`).
    conn_name_attr: ClassVar[str] = "conn_id"
    default_conn_name: ClassVar[str] = "default_conn_id"
    conn_type: ClassVar[str] = ""
    hook_name: ClassVar[str] = ""

    def __init__(self, logger_name: str | None = None) -> None:
        self.log = logging.getLogger(logger_name or _logger_name(type(self)))

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        """Connection `conn_id` from the secrets chain; its password is masked from then on."""
        conn = Connection.get_connection_from_secrets(conn_id)
        logging.getLogger(_logger_name(cls)).info("using connection ID %r for task execution", conn.conn_id)
        return conn

    @classmethod
    def get_hook(cls, conn_id: str, hook_params: dict[str, Any] | None = None) -> "BaseHook":
        """A hook of the class registered for connection `conn_id`'s conn_type."""
        conn = cls.get_connection(conn_id)
        conn_type = conn.conn_type or ""
        if conn_type in BUILTIN_HOOK_MODULES:
            importlib.import_module(BUILTIN_HOOK_MODULES[conn_type])
        hook_class = hooks.get(conn_type, where=f"conn_type of connection {conn_id!r}")
        return hook_class(**{hook_class.conn_name_attr: conn_id}, **(hook_params or {}))

    def get_conn(self) -> Any:
        """The client object of the external system (a DBAPI connection, an SDK client, ...)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_conn()")


def _logger_name(cls: type) -> str:
    # Under `nbflow.task`, as Airflow's `airflow.task.hooks.<module>.<class>`: the task runner
    # routes that logger into the attempt's log file, so a hook's messages land next to the task's.
    return f"nbflow.task.hooks.{cls.__module__}.{cls.__name__}"
