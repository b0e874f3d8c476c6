"""DateTimeSensor: done once the clock is past `target_time` (a datetime or a templated string)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from nbflow.exceptions import DagDefinitionError
from nbflow.sensors.base import BaseSensorOperator
from nbflow.utils.timezone import coerce_datetime


class DateTimeSensor(BaseSensorOperator):
    """`target_time="{{ data_interval_end + macros.timedelta(hours=1) }}"` or a datetime; naive means UTC."""

    template_fields = ("target_time",)

    def __init__(self, *, target_time: str | dt.datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(target_time, dt.datetime):
            self.target_time = target_time.isoformat()
        elif isinstance(target_time, str):
            self.target_time = target_time
        else:
            raise DagDefinitionError(f"sensor {self.task_id!r}: target_time must be a datetime or a string, "
                                     f"got {type(target_time).__name__}")

    def poke(self, context: dict[str, Any]) -> bool:
        target = coerce_datetime(str(self.target_time), where=f"sensor {self.task_id!r} target_time")
        self.log.info("checking whether it is past %s", target)
        return dt.datetime.now(dt.timezone.utc) > target


class DateTimeSensorAsync(DateTimeSensor):
    """DateTimeSensor with deferrable=True: waits in reschedule mode (nbflow has no triggerer)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        super().__init__(**kwargs)


__all__ = ["DateTimeSensor", "DateTimeSensorAsync"]
