"""TriggerDagRunOperator: start a run of another DAG, optionally wait for it to finish.

The run is created through the runtime's services (operators/services.py), the same way `nbflow
dags trigger` creates one: the target DAG is read from the dags folder, its params checked, its
task instances created; the scheduler then runs it like any manual run.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.exceptions import DagRunAlreadyExists, NbflowException, NbflowSkipException
from nbflow.operators.services import services_of
from nbflow.utils.state import DagRunState, DagRunType
from nbflow.utils.timezone import coerce_datetime

XCOM_RUN_ID = "trigger_run_id"
XCOM_LOGICAL_DATE_ISO = "trigger_logical_date_iso"


class TriggerDagRunOperator(BaseOperator):
    """Triggers `trigger_dag_id` with `conf`; with wait_for_completion, polls every poke_interval seconds
    until the run is in allowed_states (success) or failed_states (fails the task)."""

    template_fields = ("trigger_dag_id", "trigger_run_id", "logical_date", "conf")
    template_fields_renderers = {"conf": "py"}
    ui_color = "#ffefeb"

    def __init__(self, *, trigger_dag_id: str, trigger_run_id: str | None = None, conf: dict[str, Any] | None = None,
                 logical_date: str | dt.datetime | None = None, reset_dag_run: bool = False,
                 wait_for_completion: bool = False, poke_interval: float = 60,
                 allowed_states: Iterable[str] | None = None, failed_states: Iterable[str] | None = None,
                 skip_when_already_exists: bool = False, deferrable: bool = False, **kwargs: Any) -> None:
        kwargs.pop("execution_date", None)
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.logical_date = logical_date.isoformat() if isinstance(logical_date, dt.datetime) else logical_date
        self.reset_dag_run = reset_dag_run
        self.wait_for_completion = wait_for_completion
        self.poke_interval = poke_interval
        self.allowed_states = list(allowed_states or [DagRunState.SUCCESS])
        self.failed_states = list(failed_states or [DagRunState.FAILED])
        self.skip_when_already_exists = skip_when_already_exists
        self.deferrable = deferrable  # no triggerer: the wait happens in this attempt

    def execute(self, context: dict[str, Any]) -> str:
        if self.conf is not None and not isinstance(self.conf, dict):
            raise NbflowException(f"task {self.task_id!r}: conf must be a dict, got {type(self.conf).__name__}")
        logical = (coerce_datetime(self.logical_date, where=f"task {self.task_id!r} logical_date")
                   if self.logical_date else dt.datetime.now(dt.timezone.utc))
        run_id = self.trigger_run_id or f"{DagRunType.MANUAL}__{logical.isoformat()}"
        services = services_of(context)
        try:
            services.trigger_dag(self.trigger_dag_id, run_id=run_id, logical_date=logical, conf=self.conf or {},
                                 replace=False)
        except DagRunAlreadyExists:
            if self.skip_when_already_exists:
                raise NbflowSkipException(f"DAG {self.trigger_dag_id!r} already has run {run_id!r}; skipped "
                                          f"(skip_when_already_exists)") from None
            if not self.reset_dag_run:
                raise
            self.log.info("DAG %s already has run %s; replacing it (reset_dag_run)", self.trigger_dag_id, run_id)
            services.trigger_dag(self.trigger_dag_id, run_id=run_id, logical_date=logical, conf=self.conf or {},
                                 replace=True)
        self.log.info("triggered DAG %s: run %s", self.trigger_dag_id, run_id)
        ti = context["ti"]
        ti.xcom_push(XCOM_RUN_ID, run_id)
        ti.xcom_push(XCOM_LOGICAL_DATE_ISO, logical.isoformat())
        if self.wait_for_completion:
            self._wait(services, run_id)
        return run_id

    def _wait(self, services: Any, run_id: str) -> None:
        while True:
            time.sleep(self.poke_interval)
            state = services.run_state(self.trigger_dag_id, run_id)
            self.log.info("waiting for DAG %s run %s: %s", self.trigger_dag_id, run_id, state)
            if state in self.failed_states:
                raise NbflowException(f"triggered DAG {self.trigger_dag_id!r} run {run_id!r} ended {state} "
                                      f"(failed_states {self.failed_states})")
            if state in self.allowed_states:
                return
            if state is None:
                raise NbflowException(f"triggered DAG {self.trigger_dag_id!r} run {run_id!r} vanished while "
                                      f"waiting for it")


__all__ = ["TriggerDagRunOperator"]
