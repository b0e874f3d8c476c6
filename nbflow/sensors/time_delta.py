"""TimeDeltaSensor: done once `delta` has passed after the run's data interval ends."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from nbflow.sensors.base import BaseSensorOperator


class TimeDeltaSensor(BaseSensorOperator):
    """Waits until data_interval_end + delta (a manual run's interval ends at its logical date)."""

    def __init__(self, *, delta: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = delta

    def target(self, context: dict[str, Any]) -> datetime:
        end = context.get("data_interval_end") or context["logical_date"]
        return end + self.delta

    def poke(self, context: dict[str, Any]) -> bool:
        target = self.target(context)
        self.log.info("checking whether it is past %s", target)
        return datetime.now(timezone.utc) > target


class TimeDeltaSensorAsync(TimeDeltaSensor):
    """TimeDeltaSensor with deferrable=True: waits in reschedule mode (nbflow has no triggerer)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        super().__init__(**kwargs)


__all__ = ["TimeDeltaSensor", "TimeDeltaSensorAsync"]
