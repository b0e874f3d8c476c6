"""BaseSensorOperator: poke until a condition holds, holding the slot (poke) or freeing it between pokes (reschedule).

Airflow's semantics: `poke(context)` returns a bool or a PokeReturnValue; the sensor times out
`timeout` seconds after its first poke (NbflowSensorTimeout fails it without retries, or it is
skipped with `soft_fail`, which also skips on a fail exception from `poke`; `never_fail` skips on any
error, `silent_fail` logs it and pokes again); `exponential_backoff` grows the wait between pokes, capped by
`max_wait`. In reschedule mode each poke is one short attempt that ends up_for_reschedule with the
time of the next poke; the try number does not grow, and the first poke's time is read back from
the metadata database (task_reschedule) through the runtime's services. nbflow has no triggerer:
`deferrable=True` runs the sensor in reschedule mode, which keeps the same promise (no slot held
while waiting).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.exceptions import (DagDefinitionError, NbflowException, NbflowFailException, NbflowRescheduleException,
                               NbflowSensorTimeout, NbflowSkipException, NbflowTaskTimeout)
from nbflow.operators.services import services_of

POKE = "poke"
RESCHEDULE = "reschedule"
_MODES = (POKE, RESCHEDULE)
_FAILING = (NbflowSensorTimeout, NbflowTaskTimeout, NbflowFailException)  # what soft_fail turns into a skip


@dataclass(frozen=True, slots=True)
class PokeReturnValue:
    """What `poke` may return instead of a bool: whether it is done, and the value to push as XCom."""

    is_done: bool
    xcom_value: Any = None

    def __bool__(self) -> bool:
        return self.is_done


def _seconds(value: Any, name: str, task_id: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise DagDefinitionError(f"sensor {task_id!r}: {name} must be a non-negative number of seconds or a "
                                 f"timedelta, got {value!r}")
    return float(seconds)


class BaseSensorOperator(BaseOperator):
    """Subclasses write `poke(context)`; see the module docstring for the modes and the timeout."""

    ui_color = "#e6f1f2"
    valid_modes = _MODES

    def __init__(self, *, poke_interval: float | timedelta = 60, timeout: float | timedelta = 60 * 60 * 24 * 7,
                 soft_fail: bool = False, mode: str = POKE, exponential_backoff: bool = False,
                 max_wait: float | timedelta | None = None, silent_fail: bool = False, never_fail: bool = False,
                 deferrable: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.poke_interval = _seconds(poke_interval, "poke_interval", self.task_id)
        self.timeout = _seconds(timeout, "timeout", self.task_id)
        self.max_wait = None if max_wait is None else _seconds(max_wait, "max_wait", self.task_id)
        if mode not in _MODES:
            raise DagDefinitionError(f"sensor {self.task_id!r}: mode must be one of {', '.join(_MODES)}, got {mode!r}")
        if soft_fail and never_fail:
            raise DagDefinitionError(f"sensor {self.task_id!r}: soft_fail and never_fail cannot both be set")
        self.soft_fail = soft_fail
        self.never_fail = never_fail
        self.silent_fail = silent_fail
        self.exponential_backoff = exponential_backoff
        self.deferrable = deferrable
        # No triggerer: a deferrable sensor waits in reschedule mode, which frees its slot as deferral would.
        self.mode = RESCHEDULE if deferrable else mode

    @property
    def reschedule(self) -> bool:
        return self.mode == RESCHEDULE

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        """Whether the condition holds now; override it."""
        raise NotImplementedError(f"{type(self).__name__} must implement poke(context)")

    # -- one attempt ------------------------------------------------------------------------------
    def execute(self, context: dict[str, Any]) -> Any:
        started = self._first_poke_at(context)
        poke_count = self._pokes_before(context) + 1
        while True:
            done = self._poke_once(context)
            if done:
                return done.xcom_value if isinstance(done, PokeReturnValue) else None
            waited = (datetime.now(timezone.utc) - started).total_seconds()
            if waited > self.timeout:
                self._time_out(waited)
            interval = self._next_poke_interval(started, waited, poke_count)
            if self.reschedule:
                raise NbflowRescheduleException(datetime.now(timezone.utc) + timedelta(seconds=interval))
            time.sleep(interval)
            poke_count += 1

    def _poke_once(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        """Airflow 3's rules: soft_fail skips on a timeout or a fail exception, never_fail on any error;
        silent_fail logs any other error and pokes again."""
        try:
            return self.poke(context)
        except _FAILING as err:
            if self.soft_fail or self.never_fail:
                flag = "soft_fail" if self.soft_fail else "never_fail"
                raise NbflowSkipException(f"sensor {self.task_id!r} skipped ({flag}): {err}") from err
            raise
        except NbflowSkipException:
            raise
        except Exception as err:
            if self.silent_fail:
                self.log.warning("sensor %s: poke failed, poking again (silent_fail): %s", self.task_id, err)
                return False
            if self.never_fail:
                raise NbflowSkipException(f"sensor {self.task_id!r} skipped (never_fail) after its poke "
                                          f"failed: {type(err).__name__}: {err}") from err
            raise

    def _time_out(self, waited: float) -> None:
        message = (f"sensor {self.task_id!r} timed out: its condition did not hold within {self.timeout:g} s "
                   f"(waited {waited:.1f} s since its first poke)")
        if self.soft_fail or self.never_fail:
            raise NbflowSkipException(message + f"; skipped ({'soft_fail' if self.soft_fail else 'never_fail'})")
        raise NbflowSensorTimeout(message)

    def _first_poke_at(self, context: dict[str, Any]) -> datetime:
        now = datetime.now(timezone.utc)
        if not self.reschedule:
            return now
        ti = context["ti"]
        try:
            first = services_of(context).first_poke_at(ti.dag_id, ti.task_id, ti.run_id, ti.map_index,
                                                       ti.try_number)
        except NbflowException:
            return now  # outside the runtime (a bare `execute`): the timeout counts from this poke
        return now if first is None else first

    def _pokes_before(self, context: dict[str, Any]) -> int:
        if not (self.reschedule and self.exponential_backoff):
            return 0
        ti = context["ti"]
        try:
            return services_of(context).reschedule_count(ti.dag_id, ti.task_id, ti.run_id, ti.map_index,
                                                         ti.try_number)
        except NbflowException:
            return 0

    def _next_poke_interval(self, started: datetime, waited: float, poke_count: int) -> float:
        """poke_interval, or with exponential_backoff Airflow's jittered doubling, never past the timeout or max_wait."""
        if not self.exponential_backoff:
            return self.poke_interval
        min_backoff = max(int(self.poke_interval * (2 ** (poke_count - 2))), 1)
        digest = hashlib.sha1(f"{self.dag_id}#{self.task_id}#{started}#{poke_count}".encode()).hexdigest()
        delay = min_backoff + int(digest, 16) % min_backoff
        interval = min(max(self.timeout - waited, 0.0), float(delay))
        if self.max_wait is not None:
            interval = min(interval, self.max_wait)
        return interval


__all__ = ["BaseSensorOperator", "PokeReturnValue"]
