"""Connection: how to reach one external system, by id, in Airflow's URI and JSON forms.

The URI form is Airflow's, both ways: `type://login:password@host:port/schema?key=value`, every
part percent-encoded, a conn_type's `_` written as `-` (and read back as `_`), an extra that is
not a flat dict of strings carried whole in the `__extra__` query parameter, and a host that
carries its own protocol written as `type://protocol://...`.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from nbflow.exceptions import InvalidConnectionError
from nbflow.utils.registry import Registry

log = logging.getLogger("nbflow.secrets")

#: conn_type → function(connection) -> (ok, message); hooks register theirs (nbflow/hooks/sql.py).
connection_testers: Registry[Callable[["Connection"], tuple[bool, str]]] = Registry(
    "connection tester", entry_points="nbflow.connection_testers")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-_]*")
_FIELDS = ("conn_id", "conn_type", "description", "host", "schema", "login", "password", "port", "extra")


def normalize_conn_type(conn_type: str) -> str:
    """The stored conn_type of a URI scheme: `postgresql` → `postgres`, `google-cloud` → `google_cloud`."""
    if conn_type == "postgresql":
        return "postgres"
    return conn_type.replace("-", "_")


def _hostname(parts: Any) -> str:
    # urlsplit lowercases and cuts the hostname at '/', but Airflow allows a percent-encoded path
    # as host (sqlite://%2Ftmp%2Fdb.sqlite), so such a host is taken from the raw netloc.
    hostname = unquote(parts.hostname or "")
    if "/" in hostname:
        hostname = parts.netloc
        if "@" in hostname:
            hostname = hostname.rsplit("@", 1)[1]
        if ":" in hostname:
            hostname = hostname.split(":", 1)[0]
        hostname = unquote(hostname)
    return hostname


class Connection:
    """A connection's fields (Airflow's names); `extra` is a JSON object as text."""

    EXTRA_KEY = "__extra__"

    def __init__(self, conn_id: str | None = None, conn_type: str | None = None, description: str | None = None,
                 host: str | None = None, login: str | None = None, password: str | None = None,
                 schema: str | None = None, port: int | str | None = None, extra: str | dict[str, Any] | None = None,
                 uri: str | None = None) -> None:
        self.conn_id = conn_id
        self.description = description
        if uri is not None:
            if any(v is not None for v in (conn_type, host, login, password, schema, port, extra)):
                raise InvalidConnectionError(
                    f"connection {conn_id!r}: give either uri or the separate fields "
                    f"(conn_type, host, login, password, schema, port, extra), not both")
            self._parse_uri(uri)
            return
        self.conn_type = conn_type
        self.host = host
        self.login = login
        self.password = password
        self.schema = schema
        self.port = _port(port, conn_id)
        self.extra = json.dumps(extra) if isinstance(extra, dict) else extra

    # -- the URI form ------------------------------------------------------------------------
    @classmethod
    def from_uri(cls, uri: str, conn_id: str | None = None, description: str | None = None) -> "Connection":
        """The connection an Airflow-style URI describes."""
        return cls(conn_id=conn_id, description=description, uri=uri)

    def _parse_uri(self, uri: str) -> None:
        where = f"connection {self.conn_id!r}" if self.conn_id else "connection URI"
        schemes = uri.count("://")
        if schemes == 0 or schemes > 2:
            raise InvalidConnectionError(f"{where}: {_safe(uri)!r} is not a connection URI; expected "
                                         f"type://login:password@host:port/schema?param=value")
        with_protocol = schemes == 2
        scheme = uri.split("://", 1)[0]
        if not _SCHEME.fullmatch(scheme):
            raise InvalidConnectionError(f"{where}: {_safe(uri)!r} does not start with a connection type "
                                         f"(letters, digits, '+', '-', '.') followed by '://'")
        self.conn_type = normalize_conn_type(scheme.lower())
        rest = uri.replace(f"{scheme}://", "" if with_protocol else "//", 1)
        if with_protocol and ("@" in rest.split("://", 1)[0] or ":" in rest.split("://", 1)[0]):
            raise InvalidConnectionError(f"{where}: {_safe(uri)!r} is not a connection URI; a host with its "
                                         f"own protocol is written type://protocol://login:password@host")
        parts = urlsplit(rest)
        host = _hostname(parts)
        protocol = parts.scheme if with_protocol else None
        self.host = f"{protocol}://{host}" if protocol else (host or None)
        self.schema = unquote(parts.path[1:]) if parts.path[1:] else None
        self.login = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        try:
            self.port = parts.port
        except ValueError as err:
            raise InvalidConnectionError(f"{where}: {_safe(uri)!r} has an invalid port ({err})") from None
        self.extra = None
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            self.extra = query[self.EXTRA_KEY] if self.EXTRA_KEY in query else json.dumps(query)

    def get_uri(self) -> str:
        """This connection as an Airflow-style URI (the inverse of `Connection(uri=...)`)."""
        uri = f"{self.conn_type.lower().replace('_', '-')}://" if self.conn_type else "//"
        protocol, host = (self.host.split("://", 1) if self.host and "://" in self.host else (None, self.host))
        if protocol:
            uri += f"{protocol}://"
        authority = ""
        if self.login is not None:
            authority += quote(self.login, safe="")
        if self.password is not None:
            authority += ":" + quote(self.password, safe="")
        if authority:
            uri += authority + "@"
        host_block = quote(host, safe="") if host else ""
        if self.port:
            host_block += f"@:{self.port}" if not host_block and not authority else f":{self.port}"
        if self.schema:
            host_block += f"/{quote(self.schema, safe='')}"
        uri += host_block
        if self.extra:
            query = None
            extra = self.extra_dejson
            if extra and all(isinstance(v, str) for v in extra.values()):
                query = urlencode(extra)
            if query and extra == dict(parse_qsl(query, keep_blank_values=True)):
                uri += ("?" if self.schema else "/?") + query
            else:
                uri += ("?" if self.schema else "/?") + urlencode({self.EXTRA_KEY: self.extra})
        return uri

    # -- the JSON form -----------------------------------------------------------------------
    @classmethod
    def from_json(cls, value: str, conn_id: str | None = None) -> "Connection":
        """The connection a JSON object describes (`extra` may be an object or its JSON text)."""
        where = f"connection {conn_id!r}" if conn_id else "connection JSON"
        try:
            data = json.loads(value)
        except json.JSONDecodeError as err:
            raise InvalidConnectionError(f"{where}: not valid JSON ({err.msg} at line {err.lineno}, "
                                         f"column {err.colno})") from None
        if not isinstance(data, dict):
            raise InvalidConnectionError(f"{where}: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, conn_id=conn_id)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], conn_id: str | None = None) -> "Connection":
        """The connection of a mapping with Airflow's field names (or a `conn_uri`/`uri` key)."""
        where = f"connection {conn_id!r}" if conn_id else "connection"
        fields = dict(data)
        fields.pop("conn_id", None)
        uri = fields.pop("conn_uri", None) or fields.pop("uri", None)
        if uri:
            return cls(conn_id=conn_id, description=fields.get("description"), uri=uri)
        unknown = sorted(set(fields) - set(_FIELDS))
        if unknown:
            raise InvalidConnectionError(f"{where}: unknown field(s) {', '.join(unknown)}; known: "
                                         f"{', '.join(f for f in _FIELDS if f != 'conn_id')}, conn_uri")
        extra = fields.pop("extra", None)
        if extra not in (None, "", {}):
            fields["extra"] = extra if isinstance(extra, str) else json.dumps(extra)
        if fields.get("conn_type"):
            fields["conn_type"] = normalize_conn_type(fields["conn_type"])
        return cls(conn_id=conn_id, **fields)

    def to_dict(self, *, prune_empty: bool = False) -> dict[str, Any]:
        """The fields as a dict, `extra` parsed into a dict."""
        data: dict[str, Any] = {
            "conn_id": self.conn_id, "conn_type": self.conn_type, "description": self.description,
            "host": self.host, "login": self.login, "password": self.password, "schema": self.schema,
            "port": self.port, "extra": self.extra_dejson if self.extra else None,
        }
        if prune_empty:
            data = {k: v for k, v in data.items() if v not in (None, "", {})}
        return data

    def as_json(self) -> str:
        """The JSON form, without conn_id (the id is the key it is stored under)."""
        data = self.to_dict(prune_empty=True)
        data.pop("conn_id", None)
        return json.dumps(data)

    # -- extras --------------------------------------------------------------------------------
    @property
    def extra_dejson(self) -> dict[str, Any]:
        """`extra` parsed; {} when empty or not a JSON object (logged, never raised)."""
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except json.JSONDecodeError:
            log.error("connection %r: extra is not valid JSON; ignoring it", self.conn_id)
            return {}
        if not isinstance(value, dict):
            log.error("connection %r: extra is JSON but not an object; ignoring it", self.conn_id)
            return {}
        return value

    def get_extra(self) -> str | None:
        """`extra` as stored text (Airflow's accessor)."""
        return self.extra

    # -- lookup and checks ---------------------------------------------------------------------
    @classmethod
    def get_connection_from_secrets(cls, conn_id: str) -> "Connection":
        """The connection `conn_id` from the configured backends chain (raises ConnectionNotFound)."""
        from nbflow.secrets.chain import get_connection
        return get_connection(conn_id)

    @classmethod
    def get(cls, conn_id: str) -> "Connection":
        """Airflow 3's name for `get_connection_from_secrets`."""
        return cls.get_connection_from_secrets(conn_id)

    def test_connection(self) -> tuple[bool, str]:
        """(ok, message) from the tester registered for this conn_type, e.g. by nbflow.hooks.sql."""
        tester = None
        if self.conn_type and self.conn_type in connection_testers:
            tester = connection_testers.get(self.conn_type)
        if tester is None:
            return False, f"no connection test is registered for conn_type {self.conn_type!r}"
        try:
            return tester(self)
        except Exception as err:  # noqa: BLE001 - a test reports the failure, it does not raise it
            return False, f"{type(err).__name__}: {err}"

    # -- value semantics -------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Connection):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, as Airflow's Connection

    def __repr__(self) -> str:
        password = "***" if self.password else self.password
        return (f"Connection(conn_id={self.conn_id!r}, conn_type={self.conn_type!r}, host={self.host!r}, "
                f"schema={self.schema!r}, login={self.login!r}, password={password!r}, port={self.port!r})")

    def __str__(self) -> str:
        return self.conn_id or repr(self)


def _port(port: int | str | None, conn_id: str | None) -> int | None:
    if port in (None, ""):
        return None
    try:
        return int(port)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidConnectionError(f"connection {conn_id!r}: port {port!r} is not an integer") from None


def _safe(uri: str) -> str:
    """A URI with anything between '://' and '@' hidden, for error messages."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return uri
