"""XCom values as JSON, with datetimes, dates, timedeltas, sets, tuples and dataclasses round-tripped."""
from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
from typing import Any

from nbflow.exceptions import XComError

_TAG = "__nbflow_type__"


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise XComError(f"{where}: dict key {k!r} is a {type(k).__name__}; XCom dict keys must be strings")
            out[k] = _encode(v, where)
        return out
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {_TAG: "tuple", "items": [_encode(v, where) for v in value]}
    if isinstance(value, (set, frozenset)):
        items = [_encode(v, where) for v in value]
        try:
            items.sort(key=json.dumps)
        except TypeError:
            pass
        return {_TAG: "set" if isinstance(value, set) else "frozenset", "items": items}
    if isinstance(value, dt.datetime):
        return {_TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {_TAG: "date", "value": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {_TAG: "timedelta", "value": value.total_seconds()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = {f.name: _encode(getattr(value, f.name), where) for f in dataclasses.fields(value)}
        return {_TAG: "dataclass", "class": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
    raise XComError(f"{where}: cannot store a value of type {type(value).__module__}.{type(value).__qualname__} "
                    f"as XCom; return JSON-compatible data (dict, list, str, number), a datetime, set, tuple or "
                    f"dataclass")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_TAG)
    if tag is None:
        return {k: _decode(v) for k, v in value.items()}
    if tag == "tuple":
        return tuple(_decode(v) for v in value["items"])
    if tag == "set":
        return {_decode(v) for v in value["items"]}
    if tag == "frozenset":
        return frozenset(_decode(v) for v in value["items"])
    if tag == "datetime":
        return dt.datetime.fromisoformat(value["value"])
    if tag == "date":
        return dt.date.fromisoformat(value["value"])
    if tag == "timedelta":
        return dt.timedelta(seconds=value["value"])
    if tag == "dataclass":
        fields = {k: _decode(v) for k, v in value["fields"].items()}
        module, _, qualname = value["class"].partition(":")
        try:
            cls: Any = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
            return cls(**fields)
        except Exception:  # noqa: BLE001 - the class is gone (e.g. defined in a cell): keep the data
            return fields
    return value


def serialize(value: Any, *, where: str = "XCom", max_size: int | None = None) -> str:
    """JSON text for a value; XComError names `where` and the type, or the size limit."""
    text = json.dumps(_encode(value, where), separators=(",", ":"), ensure_ascii=False)
    if max_size is not None and len(text.encode()) > max_size:
        raise XComError(f"{where}: XCom value is {len(text.encode()):,} bytes, over the limit of {max_size:,} "
                        f"(core.max_xcom_size); write large data to a file and pass its path")
    return text


def deserialize(text: str | None) -> Any:
    return None if text is None else _decode(json.loads(text))
