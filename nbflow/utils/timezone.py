"""Aware datetimes in UTC, whatever library made them (stdlib zoneinfo, pendulum, dateutil)."""
from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def days_ago(n: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0) -> dt.datetime:
    """Airflow 2's days_ago(): today at the given UTC time (midnight by default), `n` days back."""
    today = utcnow().replace(hour=hour, minute=minute, second=second, microsecond=microsecond)
    return today - dt.timedelta(days=n)


def coerce_datetime(value: dt.datetime | dt.date | str | None, *, where: str = "") -> dt.datetime | None:
    """An aware UTC datetime; naive values are taken as UTC, dates as midnight UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            from nbflow.exceptions import NbflowException
            place = f"{where}: " if where else ""
            raise NbflowException(f"{place}{value!r} is not an ISO date or datetime, e.g. 2025-01-31 "
                                  f"or 2025-01-31T06:00:00+00:00") from None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    # pendulum and zoneinfo datetimes both convert through astimezone; keep a plain datetime
    v = value.astimezone(UTC)
    return dt.datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC)


def parse_duration(seconds: float | dt.timedelta | None) -> dt.timedelta | None:
    if seconds is None or isinstance(seconds, dt.timedelta):
        return seconds
    return dt.timedelta(seconds=float(seconds))
