"""TimeSensor: done once the time of day (in the DAG's timezone) is past `target_time`."""
from __future__ import annotations

import datetime as dt
from typing import Any

from nbflow.sensors.base import BaseSensorOperator


class TimeSensor(BaseSensorOperator):
    """Waits until the wall clock, read in the DAG's timezone (UTC without a DAG), passes target_time."""

    def __init__(self, *, target_time: dt.time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time

    def poke(self, context: dict[str, Any]) -> bool:
        zone = getattr(self.dag, "timezone", None) if self.has_dag else None
        now = dt.datetime.now(zone or dt.timezone.utc)
        self.log.info("checking whether %s is past %s", now.time(), self.target_time)
        return now.time().replace(tzinfo=None) > self.target_time.replace(tzinfo=None)


class TimeSensorAsync(TimeSensor):
    """TimeSensor with deferrable=True: waits in reschedule mode (nbflow has no triggerer)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        super().__init__(**kwargs)


__all__ = ["TimeSensor", "TimeSensorAsync"]
