"""ExternalTaskSensor (wait for a task, tasks, or a whole run of another DAG) and ExternalTaskMarker.

The sensor reads the other DAG's states through the runtime's services (operators/services.py).
The marker does nothing when it runs: clearing it also clears its target task in the other DAG
(runtime/cross_dag_clear.py), recursively through markers there, up to `recursion_depth`.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.exceptions import DagDefinitionError, NbflowException, NbflowSkipException
from nbflow.operators.python import determine_kwargs
from nbflow.operators.services import services_of
from nbflow.sensors.base import BaseSensorOperator
from nbflow.utils.state import DagRunState, TaskInstanceState
from nbflow.utils.timezone import coerce_datetime


class ExternalTaskSensor(BaseSensorOperator):
    """Done when the other DAG's task(s) (or, with neither task argument, its run) at the matching logical
    date are in `allowed_states`; fails on `failed_states` (skips with soft_fail), skips on `skipped_states`.

    The matching logical date is this run's, minus `execution_delta`, or what `execution_date_fn(logical_date,
    context)` returns (a datetime or a list of them). `check_existence` fails at once, with a one-line error,
    when the DAG or task does not exist.
    """

    template_fields = ("external_dag_id", "external_task_id", "external_task_ids")
    ui_color = "#4db7db"

    def __init__(self, *, external_dag_id: str, external_task_id: str | None = None,
                 external_task_ids: Collection[str] | None = None, allowed_states: Iterable[str] | None = None,
                 skipped_states: Iterable[str] | None = None, failed_states: Iterable[str] | None = None,
                 execution_delta: dt.timedelta | None = None,
                 execution_date_fn: Callable[..., Any] | None = None, check_existence: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if external_task_id is not None and external_task_ids is not None:
            raise DagDefinitionError(f"sensor {self.task_id!r}: give external_task_id or external_task_ids, not both")
        if execution_delta is not None and execution_date_fn is not None:
            raise DagDefinitionError(f"sensor {self.task_id!r}: give execution_delta or execution_date_fn, not both")
        if external_task_id is not None:
            external_task_ids = [external_task_id]
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = list(external_task_ids) if external_task_ids is not None else None
        whole_dag = self.external_task_ids is None
        self.allowed_states = list(allowed_states or [DagRunState.SUCCESS if whole_dag else TaskInstanceState.SUCCESS])
        self.skipped_states = list(skipped_states or [])
        self.failed_states = list(failed_states or [])
        overlap = set(self.allowed_states) & (set(self.failed_states) | set(self.skipped_states))
        if overlap:
            raise DagDefinitionError(f"sensor {self.task_id!r}: states {sorted(overlap)} are both allowed and "
                                     f"failed/skipped")
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn
        self.check_existence = check_existence
        self._checked = False

    def _dates(self, context: dict[str, Any]) -> list[dt.datetime]:
        logical = context["logical_date"]
        if self.execution_delta is not None:
            return [logical - self.execution_delta]
        if self.execution_date_fn is not None:
            extra = determine_kwargs(self.execution_date_fn, [logical], context)
            result = self.execution_date_fn(logical, **extra)
            dates = result if isinstance(result, (list, tuple)) else [result]
            return [coerce_datetime(d, where=f"sensor {self.task_id!r} execution_date_fn") for d in dates]
        return [logical]

    def _check_existence(self, services: Any) -> None:
        if not services.dag_exists(self.external_dag_id):
            raise NbflowException(f"sensor {self.task_id!r}: the external DAG {self.external_dag_id!r} does not "
                                  f"exist (check_existence=True); fix external_dag_id")
        for task_id in self.external_task_ids or []:
            if not services.task_exists(self.external_dag_id, task_id):
                raise NbflowException(f"sensor {self.task_id!r}: the external task {task_id!r} does not exist in "
                                      f"DAG {self.external_dag_id!r} (check_existence=True); fix external_task_id(s)")

    def poke(self, context: dict[str, Any]) -> bool:
        services = services_of(context)
        if self.check_existence and not self._checked:
            self._check_existence(services)
            self._checked = True
        dates = self._dates(context)
        what = (f"DAG {self.external_dag_id!r}" if self.external_task_ids is None
                else f"task(s) {', '.join(self.external_task_ids)} of DAG {self.external_dag_id!r}")
        states: list[str | None] = []
        for date in dates:
            found = services.task_states(self.external_dag_id, date, self.external_task_ids)
            expected = 1 if self.external_task_ids is None else len(self.external_task_ids)
            states.extend(found if found is not None else [None] * expected)
        self.log.info("poking for %s at %s: %s", what, ", ".join(d.isoformat() for d in dates), states)
        if any(state in self.failed_states for state in states):
            message = f"sensor {self.task_id!r}: {what} ended in a failed state ({', '.join(map(str, states))})"
            if self.soft_fail:
                raise NbflowSkipException(message + "; skipped (soft_fail)")
            raise NbflowException(message)
        if any(state in self.skipped_states for state in states):
            raise NbflowSkipException(f"sensor {self.task_id!r}: {what} ended in a skipped state "
                                      f"({', '.join(map(str, states))})")
        return bool(states) and all(state in self.allowed_states for state in states)


class ExternalTaskSensorAsync(ExternalTaskSensor):
    """ExternalTaskSensor with deferrable=True: waits in reschedule mode (nbflow has no triggerer)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        super().__init__(**kwargs)


class ExternalTaskMarker(BaseOperator):
    """Clearing this task also clears `external_task_id` of the other DAG's run at `logical_date` (templated,
    rendered against the cleared run), and through markers there, at most `recursion_depth` DAGs deep."""

    template_fields = ("external_dag_id", "external_task_id", "logical_date")
    ui_color = "#4db7db"

    def __init__(self, *, external_dag_id: str, external_task_id: str,
                 logical_date: str | dt.datetime | None = "{{ logical_date.isoformat() }}",
                 recursion_depth: int = 10, **kwargs: Any) -> None:
        kwargs.pop("execution_date", None)
        super().__init__(**kwargs)
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.logical_date = logical_date.isoformat() if isinstance(logical_date, dt.datetime) else logical_date
        if not isinstance(recursion_depth, int) or recursion_depth <= 0:
            raise DagDefinitionError(f"task {self.task_id!r}: recursion_depth must be a positive integer, "
                                     f"got {recursion_depth!r}")
        self.recursion_depth = recursion_depth

    def execute(self, context: dict[str, Any]) -> None:
        return None


__all__ = ["ExternalTaskMarker", "ExternalTaskSensor", "ExternalTaskSensorAsync"]
