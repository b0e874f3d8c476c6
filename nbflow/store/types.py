"""Column types that behave the same on SQLite and Postgres."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator

UTC = dt.timezone.utc


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    Postgres keeps `timestamptz` and returns values in the session's time zone; SQLite keeps text
    without an offset. Both are normalised here so that callers never see a naive datetime or a
    non-UTC offset, and so that SQLite's text comparison orders values correctly (every value is
    written in the same zone and format). A naive datetime is taken as UTC, as
    `nbflow.utils.timezone.coerce_datetime` does.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        value = _to_utc(value)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)  # SQLite and others: naive text, always UTC

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw text from a hand-written SQLite query
            value = dt.datetime.fromisoformat(value)
        return _to_utc(value)


def _to_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    if value.tzinfo is UTC:
        return value
    # pendulum and zoneinfo values both convert through astimezone; return a plain datetime
    converted = value.astimezone(UTC)
    return dt.datetime(converted.year, converted.month, converted.day, converted.hour, converted.minute,
                       converted.second, converted.microsecond, tzinfo=UTC)
