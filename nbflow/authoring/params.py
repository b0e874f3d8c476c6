"""Param and ParamsDict: DAG and task parameters with a type and JSON-schema validation."""
from __future__ import annotations

import copy
from collections.abc import ItemsView, Iterator, Mapping, MutableMapping
from typing import Any

from nbflow.exceptions import ParamValidationError


class _Unset:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _Unset()


class Param:
    """A default value plus a JSON schema (`type`, `minimum`, `enum`, `format`, ...) it must match."""

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any) -> None:
        self.value = default
        self.description = description
        self.schema = dict(schema)
        if description is not None:
            self.schema.setdefault("description", description)

    def __repr__(self) -> str:
        return f"Param({self.value!r}, schema={self.schema!r})"

    def __copy__(self) -> "Param":
        return Param(self.value, self.description, **{k: v for k, v in self.schema.items() if k != "description"})

    def has_value(self) -> bool:
        return self.value is not NOTSET

    def resolve(self, value: Any = NOTSET, *, name: str = "param") -> Any:
        """The value to use (the given one, else the default), checked against the schema."""
        final = self.value if value is NOTSET else value
        if final is NOTSET:
            raise ParamValidationError(f"param {name!r} has no value and no default; pass it in the run's conf")
        schema = {k: v for k, v in self.schema.items() if k not in {"description", "title", "section",
                                                                    "values_display", "description_md"}}
        if schema:
            import jsonschema  # lazy: only DAGs with typed params pay for it
            try:
                jsonschema.validate(final, schema, format_checker=jsonschema.FormatChecker())
            except jsonschema.ValidationError as err:
                raise ParamValidationError(f"param {name!r} = {final!r} is invalid: {err.message}") from None
            except jsonschema.SchemaError as err:
                raise ParamValidationError(f"param {name!r} has an invalid schema: {err.message}") from None
        return final

    def dump(self) -> dict[str, Any]:
        return {"value": None if self.value is NOTSET else self.value, "schema": self.schema,
                "description": self.description}


class ParamsDict(MutableMapping[str, Any]):
    """Name → Param; reading an item gives the Param's value. `validate()` checks them all."""

    def __init__(self, values: Mapping[str, Any] | None = None, *, suppress_exception: bool = False) -> None:
        self._params: dict[str, Param] = {}
        for key, value in (values or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, Param):
            self._params[key] = value
        elif key in self._params:
            self._params[key] = Param(value, self._params[key].description,
                                      **{k: v for k, v in self._params[key].schema.items() if k != "description"})
        else:
            self._params[key] = Param(value)

    def __getitem__(self, key: str) -> Any:
        param = self._params[key]
        return None if param.value is NOTSET else param.value

    def get_param(self, key: str) -> Param:
        return self._params[key]

    def __delitem__(self, key: str) -> None:
        del self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def items_params(self) -> ItemsView[str, Param]:
        return self._params.items()

    def __copy__(self) -> "ParamsDict":
        new = ParamsDict()
        new._params = {k: copy.copy(v) for k, v in self._params.items()}
        return new

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        items = other.items_params() if isinstance(other, ParamsDict) else dict(other, **kwargs).items()
        for key, value in items:
            self[key] = value

    def validate(self, overrides: Mapping[str, Any] | None = None, *, where: str = "") -> dict[str, Any]:
        """Plain values after applying `overrides` (e.g. a run's conf), each checked; errors name `where`."""
        overrides = overrides or {}
        resolved: dict[str, Any] = {}
        for key, param in self._params.items():
            try:
                resolved[key] = param.resolve(overrides.get(key, NOTSET), name=key)
            except ParamValidationError as err:
                raise ParamValidationError(f"{where}: {err}" if where else str(err)) from None
        for key, value in overrides.items():
            resolved.setdefault(key, value)
        return resolved

    def dump(self) -> dict[str, Any]:
        return {k: p.dump() for k, p in self._params.items()}

    def __repr__(self) -> str:
        return f"ParamsDict({dict(self)!r})"
