"""`var` and `conn` in templates: `{{ var.value.KEY }}`, `{{ var.json.KEY.field }}`, `{{ conn.ID.host }}`."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import ConnectionNotFound
from nbflow.secrets.chain import NOTSET, SecretsChain, default_chain

if TYPE_CHECKING:
    from nbflow.secrets.connection import Connection


class VariableAccessor:
    """`var.value` (text) or `var.json` (parsed): attribute and `.get(key, default)` access."""

    def __init__(self, deserialize_json: bool, chain: SecretsChain | None = None) -> None:
        self._deserialize_json = deserialize_json
        self._chain = chain

    def _get(self, key: str, default: Any = NOTSET) -> Any:
        from nbflow.secrets.variable import _mask_nested

        chain = self._chain or default_chain()
        marker = object()
        value = chain.get_variable(key, NOTSET if default is NOTSET else marker)
        if value is marker:
            return default
        if not self._deserialize_json:
            return value
        parsed = json.loads(value)
        _mask_nested(key, parsed)
        return parsed

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self._get(key)

    def __getitem__(self, key: str) -> Any:
        return self._get(key)

    def get(self, key: str, default_var: Any = NOTSET) -> Any:
        """The variable, else `default_var` (KeyError without a default)."""
        return self._get(key, default_var)

    def __repr__(self) -> str:
        return f"<VariableAccessor {'json' if self._deserialize_json else 'value'}>"


class VariableNamespace:
    """The template's `var`: `var.value` and `var.json`."""

    def __init__(self, chain: SecretsChain | None = None) -> None:
        self.value = VariableAccessor(False, chain)
        self.json = VariableAccessor(True, chain)


class ConnectionAccessor:
    """The template's `conn`: `conn.ID` (ConnectionNotFound when missing) or `conn.get('ID', default)`."""

    def __init__(self, chain: SecretsChain | None = None) -> None:
        self._chain = chain

    def __getattr__(self, conn_id: str) -> "Connection":
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        return (self._chain or default_chain()).get_connection(conn_id)

    def __getitem__(self, conn_id: str) -> "Connection":
        return (self._chain or default_chain()).get_connection(conn_id)

    def get(self, conn_id: str, default_conn: Any = None) -> Any:
        """The connection, else `default_conn`."""
        try:
            return (self._chain or default_chain()).get_connection(conn_id)
        except ConnectionNotFound:
            return default_conn

    def __repr__(self) -> str:
        return "<ConnectionAccessor>"
