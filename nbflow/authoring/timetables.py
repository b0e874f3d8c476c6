"""Schedules: cron strings and presets (croniter), timedeltas, @once and None, with data intervals.

A run covers the data interval [start, end) and its logical date is the interval's start, as in
Airflow 2 and Airflow 3 with `create_cron_data_intervals`: `ds` is the day the data belongs to.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from nbflow.exceptions import InvalidScheduleError
from nbflow.utils.timezone import UTC, coerce_datetime

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


@dataclass(frozen=True, slots=True)
class DataInterval:
    start: datetime
    end: datetime


class Timetable:
    """When runs happen: each run's data interval, and the next one after a given interval."""

    summary: str = "None"
    periodic: bool = True

    def serialize(self) -> dict[str, Any]:
        """What `deserialize` needs to rebuild this schedule in the scheduler (Airflow's custom-timetable API)."""
        return {}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> "Timetable":
        return cls()

    def next_after(self, last: DataInterval | None, *, start_date: datetime | None) -> DataInterval | None:
        """The data interval of the first run after `last` (or the first run from `start_date`)."""
        raise NotImplementedError

    def infer_manual_data_interval(self, logical_date: datetime) -> DataInterval:
        """A manual run's interval (Airflow's, with run_after = the logical date): zero length here."""
        return DataInterval(logical_date, logical_date)

    def latest_complete(self, now: datetime) -> DataInterval | None:
        """The interval a DAG without catchup skips ahead to at `now` (Airflow's `_skip_to_latest`); None: none."""
        return None

    def skip_to_latest(self, interval: DataInterval, *, now: datetime) -> DataInterval:
        """Without catchup: `interval`, or the latest complete interval at `now` if that one starts later."""
        latest = self.latest_complete(now)
        return latest if latest is not None and latest.start > interval.start else interval

    def previous_start(self, start: datetime) -> datetime | None:
        """Where the interval before the one starting at `start` starts (templates' prev_ds); None if none."""
        return None

    def intervals_between(self, earliest: datetime, latest: datetime) -> list[DataInterval]:
        """Intervals whose start lies in [earliest, latest], for backfills."""
        found: list[DataInterval] = []
        interval = self.next_after(None, start_date=earliest)
        while interval is not None and interval.start <= latest:
            found.append(interval)
            interval = self.next_after(interval, start_date=earliest)
        return found

    def runs_due(self, *, last: DataInterval | None, start_date: datetime | None, end_date: datetime | None,
                 now: datetime, catchup: bool) -> list[DataInterval]:
        """Intervals that should have a run by `now`: all missed ones with catchup, else only the latest.

        None starts after `end_date`: without catchup the skipped-to interval is checked too.
        """
        due: list[DataInterval] = []
        interval = self.next_after(last, start_date=start_date)
        if interval is not None and not catchup:
            interval = self.skip_to_latest(interval, now=now)
        while interval is not None and interval.end <= now and (end_date is None or interval.start <= end_date):
            due.append(interval)
            if not self.periodic:
                break
            interval = self.next_after(interval, start_date=start_date)
        if not catchup and len(due) > 1:
            due = due[-1:]
        return due


class NullTimetable(Timetable):
    summary = "None"
    periodic = False

    def next_after(self, last: DataInterval | None, *, start_date: datetime | None) -> DataInterval | None:
        return None


class OnceTimetable(Timetable):
    summary = "@once"
    periodic = False

    def next_after(self, last: DataInterval | None, *, start_date: datetime | None) -> DataInterval | None:
        if last is not None or start_date is None:
            return None
        return DataInterval(start_date, start_date)


def croniter_class() -> Any:
    """The `croniter` class, imported on first use (keeps `import nbflow` fast).

    croniter 7 calls `platform.architecture()` at import, which runs `file` on the interpreter in a
    subprocess (~14 ms, paid by every process that parses a DAG with a schedule); for the running
    interpreter the pointer size answers the same question, so that is what it is given meanwhile."""
    if "croniter" not in sys.modules:
        import platform
        import struct
        real = platform.architecture
        platform.architecture = lambda *args, **kwargs: (  # type: ignore[assignment]
            f"{struct.calcsize('P') * 8}bit", "") if not args and not kwargs else real(*args, **kwargs)
        try:
            import croniter  # noqa: F401
        finally:
            platform.architecture = real  # type: ignore[assignment]
    from croniter import croniter
    return croniter


@functools.lru_cache(maxsize=1024)
def _is_valid_cron(expression: str) -> bool:
    """Cached: croniter's check costs ~0.1 ms, paid by every DAG of a folder that shares a schedule."""
    croniter = croniter_class()
    try:
        return bool(croniter.is_valid(expression))
    except Exception:  # noqa: BLE001 - croniter raises several kinds
        return False


class CronTimetable(Timetable):
    """A cron expression; each run's interval spans from one cron tick to the next."""

    def __init__(self, expression: str, *, dag_id: str = "", timezone: tzinfo = UTC) -> None:
        croniter = croniter_class()
        self.expression = PRESETS.get(expression, expression)
        self.summary = expression
        # Ticks are wall-clock times in the DAG's timezone ('0 6 * * *' is 06:00 there, DST included),
        # as in Airflow; intervals are still handed out in UTC.
        self.timezone = timezone
        if not _is_valid_cron(self.expression):
            raise InvalidScheduleError(f"DAG {dag_id!r}: schedule {expression!r} is not a valid cron expression "
                                       f"or preset; e.g. '0 6 * * *' or '@daily'")
        self._croniter = croniter

    def _tick_after(self, moment: datetime) -> datetime:
        tick = self._croniter(self.expression, moment.astimezone(self.timezone)).get_next(datetime)
        return coerce_datetime(tick)  # type: ignore[return-value]

    def _tick_at_or_after(self, moment: datetime) -> datetime:
        if self._croniter.match(self.expression, moment.astimezone(self.timezone)):
            return moment
        return self._tick_after(moment)

    def _tick_before(self, moment: datetime) -> datetime:
        tick = self._croniter(self.expression, moment.astimezone(self.timezone)).get_prev(datetime)
        return coerce_datetime(tick)  # type: ignore[return-value]

    def previous_start(self, start: datetime) -> datetime | None:
        return self._tick_before(start)

    def _tick_at_or_before(self, moment: datetime) -> datetime:
        before = self._tick_before(moment)
        after = self._tick_after(before)
        return after if after <= moment else before

    def next_after(self, last: DataInterval | None, *, start_date: datetime | None) -> DataInterval | None:
        if last is not None:
            start = last.end
        elif start_date is not None:
            start = self._tick_at_or_after(start_date)
        else:
            return None
        return DataInterval(start, self._tick_after(start))

    def infer_manual_data_interval(self, logical_date: datetime) -> DataInterval:
        """The last complete interval ending at or before `logical_date`: a run at 01:00 on the 25th of a
        daily DAG covers [24th, 25th), as in Airflow's CronDataIntervalTimetable."""
        end = self._tick_at_or_before(logical_date)
        return DataInterval(self._tick_before(end), end)

    def latest_complete(self, now: datetime) -> DataInterval | None:
        return self.infer_manual_data_interval(now)


class DeltaTimetable(Timetable):
    """Every `delta` from start_date on."""

    def __init__(self, delta: timedelta, *, dag_id: str = "") -> None:
        if delta <= timedelta(0):
            raise InvalidScheduleError(f"DAG {dag_id!r}: schedule timedelta must be positive, got {delta}")
        self.delta = delta
        self.summary = str(delta)

    def previous_start(self, start: datetime) -> datetime | None:
        return start - self.delta

    def next_after(self, last: DataInterval | None, *, start_date: datetime | None) -> DataInterval | None:
        start = last.end if last is not None else start_date
        if start is None:
            return None
        return DataInterval(start, start + self.delta)

    def infer_manual_data_interval(self, logical_date: datetime) -> DataInterval:
        """One delta ending at the logical date, as in Airflow's DeltaDataIntervalTimetable."""
        return DataInterval(logical_date - self.delta, logical_date)

    def latest_complete(self, now: datetime) -> DataInterval | None:
        # Airflow rounds `now` down to a multiple of the delta since the epoch, not onto the start_date
        # grid, and skips to the delta ending there.
        seconds = now.timestamp()
        end = datetime.fromtimestamp(seconds - seconds % self.delta.total_seconds(), tz=now.tzinfo)
        return DataInterval(end - self.delta, end)


def make_timetable(schedule: Any, *, dag_id: str = "", timezone: tzinfo = UTC) -> Timetable:
    """Parse a DAG's `schedule` argument; a bad one is an InvalidScheduleError naming the DAG.
    Cron expressions are read in `timezone` (the DAG's: its start date's)."""
    if schedule is None:
        return NullTimetable()
    if isinstance(schedule, Timetable):
        return schedule
    if isinstance(schedule, timedelta):
        return DeltaTimetable(schedule, dag_id=dag_id)
    if isinstance(schedule, str):
        if schedule == "@once":
            return OnceTimetable()
        if schedule in ("@continuous",):
            raise InvalidScheduleError(f"DAG {dag_id!r}: schedule '@continuous' is not supported; use a cron string")
        return CronTimetable(schedule.strip(), dag_id=dag_id, timezone=timezone)
    if hasattr(schedule, "total_seconds"):  # pendulum Duration / dateutil-like deltas
        return DeltaTimetable(timedelta(seconds=schedule.total_seconds()), dag_id=dag_id)
    raise InvalidScheduleError(f"DAG {dag_id!r}: schedule {schedule!r} is not a cron string, preset, timedelta "
                               f"or None")


def as_utc(value: Any) -> datetime | None:
    return coerce_datetime(value)
