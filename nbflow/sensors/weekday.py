"""DayOfWeekSensor: done on the given days of the week (today's, or the run's logical date's)."""
from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

from nbflow.exceptions import DagDefinitionError
from nbflow.sensors.base import BaseSensorOperator


class WeekDay(enum.IntEnum):
    """ISO day numbers (Airflow's `airflow.utils.weekday.WeekDay`)."""

    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str: str) -> int:
        try:
            return cls[week_day_str.upper()]
        except KeyError:
            raise DagDefinitionError(f"invalid week day {week_day_str!r}; use one of "
                                     f"{', '.join(d.name.title() for d in cls)}") from None

    @classmethod
    def convert(cls, day: "str | WeekDay") -> int:
        return day if isinstance(day, WeekDay) else cls.get_weekday_number(day)

    @classmethod
    def validate_week_day(cls, week_day: "str | WeekDay | Iterable[str | WeekDay]") -> set[int]:
        if isinstance(week_day, (str, WeekDay)):
            return {cls.convert(week_day)}
        if isinstance(week_day, Iterable):
            return {cls.convert(day) for day in week_day}
        raise DagDefinitionError(f"week_day must be a day name, a WeekDay or a set of them, got {week_day!r}")


class DayOfWeekSensor(BaseSensorOperator):
    """Done when today (or, with use_task_logical_date, the run's logical date) is one of `week_day`."""

    def __init__(self, *, week_day: "str | WeekDay | Iterable[str | WeekDay]", use_task_logical_date: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.week_day = week_day
        self.use_task_logical_date = use_task_logical_date
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def poke(self, context: dict[str, Any]) -> bool:
        moment = context["logical_date"] if self.use_task_logical_date else dt.datetime.now(dt.timezone.utc)
        self.log.info("checking whether %s is one of %s", moment.strftime("%A"), sorted(self._week_day_num))
        return moment.isoweekday() in self._week_day_num


__all__ = ["DayOfWeekSensor", "WeekDay"]
