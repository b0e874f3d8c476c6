"""Variable: small named values shared by DAGs, read through the secrets chain (Airflow's API)."""
from __future__ import annotations

import json
from typing import Any

from nbflow.secrets.chain import NOTSET, default_chain
from nbflow.utils.masking import masker

_ABSENT: Any = object()  # asked of the chain in place of a caller's default, which may itself be None


def _mask_nested(key: str, value: Any) -> None:
    """Register `value` if `key` is sensitive, and every sensitive field nested in it."""
    if masker.is_sensitive(key):
        masker.add(value)
    elif isinstance(value, dict):
        for name, item in value.items():
            _mask_nested(str(name), item)
    elif isinstance(value, list):
        for item in value:
            _mask_nested(key, item)


class Variable:
    """Read, write and delete variables by key; writes go to the metadata database."""

    @classmethod
    def get(cls, key: str, default_var: Any = NOTSET, deserialize_json: bool = False) -> Any:
        """The value of `key` (parsed from JSON if asked), else `default_var`; KeyError when neither exists."""
        value = default_chain().get_variable(key, NOTSET if default_var is NOTSET else _ABSENT)
        if value is _ABSENT:
            return default_var
        if not deserialize_json:
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as err:
            from nbflow.exceptions import InvalidSecretError

            raise InvalidSecretError(f"variable {key!r} is not valid JSON ({err.msg} at line {err.lineno}, column "
                                     f"{err.colno}); read it without deserialize_json or store JSON") from None
        _mask_nested(key, parsed)
        return parsed

    @classmethod
    def set(cls, key: str, value: Any, description: str | None = None, serialize_json: bool = False) -> None:
        """Store `value` under `key` (as JSON if asked, else as text)."""
        text = json.dumps(value, indent=2) if serialize_json else str(value)
        default_chain().set_variable(key, text, description=description)

    @classmethod
    def setdefault(cls, key: str, default: Any, description: str | None = None, deserialize_json: bool = False) -> Any:
        """The value of `key`; when it does not exist, store `default` first and return it."""
        value = cls.get(key, default_var=None, deserialize_json=deserialize_json)
        if value is None:
            if default is None:
                raise ValueError(f"variable {key!r} does not exist and the default is None")
            cls.set(key, default, description=description, serialize_json=deserialize_json)
            return default
        return value

    @classmethod
    def delete(cls, key: str) -> int:
        """Remove `key` from the metadata database; the number of variables removed (0 or 1)."""
        return int(default_chain().delete_variable(key))

