"""Connections and variables as files: JSON, YAML and env formats, for import, export and display.

The formats are Airflow's (`airflow connections export|import`, the local-filesystem backend):

* JSON / YAML connections: `{conn_id: {conn_type, host, login, password, schema, port, extra, description}}`,
  where a value may also be a URI string (or `{"conn_uri": ...}`) and `extra` an object or its JSON text;
* env connections: one `conn_id=URI` per line, `#` comments;
* JSON / YAML variables: `{key: value}`, a non-text value stored as its JSON text;
* env variables: one `key=value` per line.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nbflow.exceptions import InvalidSecretError
from nbflow.secrets.connection import Connection
from nbflow.utils.masking import MASK, masker

FORMATS = ("json", "yaml", "env")
_SUFFIXES = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".env": "env"}


def format_of(path: str | Path, given: str | None = None) -> str:
    """The file format: `given` if any, else from the suffix (.json, .yaml/.yml, .env)."""
    if given:
        if given not in FORMATS:
            raise InvalidSecretError(f"unknown format {given!r}; use one of: {', '.join(FORMATS)}")
        return given
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise InvalidSecretError(f"{path}: cannot tell the format from the suffix {suffix or '(none)'!r}; name the "
                                 f"file .json, .yaml or .env, or give the format ({', '.join(FORMATS)})")
    return _SUFFIXES[suffix]


# -- connections --------------------------------------------------------------------------------

def connection_fields(conn: Connection, *, show_secrets: bool = False) -> dict[str, Any]:
    """The fields of `conn` for display or export; password and sensitive extras are *** unless shown."""
    data = conn.to_dict()
    data.pop("conn_id")
    if not show_secrets:
        if data["password"]:
            data["password"] = MASK
        if isinstance(data["extra"], dict):
            data["extra"] = masker.redact_value(_hide_sensitive(data["extra"]))
    return data


def _hide_sensitive(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (MASK if masker.is_sensitive(str(k)) and v else v) for k, v in extra.items()}


def connections_to_text(conns: Iterable[Connection], fmt: str, *, show_secrets: bool = False) -> str:
    """`conns` in format `fmt`; secrets hidden (***) unless `show_secrets`."""
    conns = list(conns)
    if fmt == "env":
        if not show_secrets:
            return "".join(f"{c.conn_id}={_masked_uri(c)}\n" for c in conns)
        return "".join(f"{c.conn_id}={c.get_uri()}\n" for c in conns)
    data = {c.conn_id: connection_fields(c, show_secrets=show_secrets) for c in conns}
    return _dump(data, fmt)


def _masked_uri(conn: Connection) -> str:
    shown = Connection.from_dict(connection_fields(conn, show_secrets=False), conn_id=conn.conn_id)
    return shown.get_uri().replace("%2A%2A%2A", MASK)


def connections_from_text(text: str, fmt: str, *, source: str = "input") -> list[Connection]:
    """The connections a file holds; errors name the source and the conn_id."""
    if fmt == "env":
        return [Connection(conn_id=key, uri=value) for key, value in _env_pairs(text, source)]
    data = _load(text, fmt, source)
    conns = []
    for conn_id, value in data.items():
        if isinstance(value, str):
            conns.append(Connection(conn_id=str(conn_id), uri=value))
        elif isinstance(value, dict):
            conns.append(Connection.from_dict(value, conn_id=str(conn_id)))
        else:
            raise InvalidSecretError(f"{source}: connection {conn_id!r} must be a URI string or an object of "
                                     f"fields, not {type(value).__name__}")
    return conns


# -- variables ------------------------------------------------------------------------------------

def variables_to_text(variables: Mapping[str, str | None], fmt: str, *, show_secrets: bool = False) -> str:
    """`variables` in format `fmt`; values of sensitive keys hidden (***) unless `show_secrets`."""
    shown = {k: (MASK if not show_secrets and masker.is_sensitive(k) and v else v) for k, v in variables.items()}
    if fmt == "env":
        return "".join(f"{k}={'' if v is None else v}\n" for k, v in shown.items())
    # A value holding a JSON object or list is exported as that structure, as Airflow does.
    return _dump({k: _maybe_json(v) for k, v in shown.items()}, fmt)


def _maybe_json(value: str | None) -> Any:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value
    return parsed if isinstance(parsed, (dict, list)) else value


def variables_from_text(text: str, fmt: str, *, source: str = "input") -> dict[str, str]:
    """The variables a file holds, each as the text to store (JSON text for non-text values)."""
    if fmt == "env":
        return dict(_env_pairs(text, source))
    data = _load(text, fmt, source)
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


# -- shared -----------------------------------------------------------------------------------------

def _dump(data: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    import yaml

    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)


def _load(text: str, fmt: str, source: str) -> dict[str, Any]:
    if fmt == "json":
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as err:
            raise InvalidSecretError(f"{source}: not valid JSON ({err.msg} at line {err.lineno}, column "
                                     f"{err.colno})") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise InvalidSecretError(f"{source}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InvalidSecretError(f"{source}: expected an object of id → value at the top, "
                                 f"got {type(data).__name__}")
    return data


def _env_pairs(text: str, source: str) -> list[tuple[str, str]]:
    pairs = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidSecretError(f"{source}, line {number}: expected ID=VALUE, got {line[:40]!r}")
        pairs.append((key.strip(), value.strip()))
    return pairs
