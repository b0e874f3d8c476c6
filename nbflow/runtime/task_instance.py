"""The `ti` a running task sees: XCom push/pull, skips, try number."""
from __future__ import annotations

import logging
import socket
from datetime import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nbflow.runtime.run_info import DagRunInfo, TIKey
from nbflow.runtime.task_services import RuntimeTaskServices
from nbflow.runtime.xcom import XComStore
from nbflow.utils.serialization import deserialize, serialize
from nbflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.baseoperator import BaseOperator

XCOM_RETURN_KEY = "return_value"
_UNSET: Any = object()


class RuntimeTaskInstance:
    """Airflow's TaskInstance as seen from inside a task (`context["ti"]`)."""

    def __init__(self, *, task: "BaseOperator", run: DagRunInfo, map_index: int, try_number: int,
                 max_tries: int, xcoms: XComStore, max_xcom_size: int | None = None) -> None:
        self.task = task
        self.dag_id, self.task_id, self.run_id = run.dag_id, task.task_id, run.run_id
        self.map_index = map_index
        self.try_number = try_number
        self.max_tries = max_tries
        self.run = run
        self.xcoms = xcoms
        self.max_xcom_size = max_xcom_size
        self.key = TIKey(run.dag_id, task.task_id, run.run_id, map_index)
        self.skip_requests: list[str] = []
        self.skip_ignores_trigger_rules = False
        self.log = logging.getLogger("nbflow.task")
        self.state: str | None = TaskInstanceState.RUNNING
        self.operator = task.task_type
        self.logical_date = run.logical_date
        self.execution_date = run.logical_date
        self.hostname = socket.gethostname()
        self.log_path: str | None = None  # the attempt's log file, for alerts and notifiers
        self.next_poke_at: datetime | None = None  # set when a sensor in reschedule mode asks to poke again
        self.nbflow_services = RuntimeTaskServices()  # operators/services.py: the database use cases tasks call

    def __repr__(self) -> str:
        return f"<TaskInstance: {self.key} try {self.try_number}>"

    @property
    def dag_run(self) -> DagRunInfo:
        return self.run

    def get_dagrun(self) -> DagRunInfo:
        return self.run

    @property
    def prev_attempted_tries(self) -> int:
        return self.try_number - 1

    # -- XCom -----------------------------------------------------------------------------------
    def xcom_push(self, key: str, value: Any) -> None:
        where = f"task {self.task_id!r} XCom {key!r}"
        self.xcoms.set(self.key, key, serialize(value, where=where, max_size=self.max_xcom_size))

    def xcom_pull(self, task_ids: str | Iterable[str] | None = None, dag_id: str | None = None,
                  key: str = XCOM_RETURN_KEY, include_prior_dates: bool = False,
                  map_indexes: int | Iterable[int] | None = None, default: Any = None) -> Any:
        """One value for one task id, a list for several; a mapped task gives the list of its values."""
        if task_ids is None:
            task_ids = [self.task_id] if key != XCOM_RETURN_KEY else list(self.task.upstream_task_ids)
        single = isinstance(task_ids, str)
        ids = [task_ids] if single else list(task_ids)
        values = [self._pull_one(tid, key, map_indexes, default, include_prior_dates) for tid in ids]
        return values[0] if single else values

    def _pull_one(self, task_id: str, key: str, map_indexes: Any, default: Any,
                  include_prior_dates: bool = False) -> Any:
        dag = self.task.dag
        upstream = dag.task_dict.get(task_id)
        if isinstance(map_indexes, int):
            raw = self.xcoms.get(TIKey(self.dag_id, task_id, self.run_id, map_indexes), key)
            return default if raw is None else deserialize(raw)
        if upstream is not None and upstream.is_mapped:
            values = [deserialize(v) for v in self.xcoms.get_mapped(self.dag_id, self.run_id, task_id, key)]
            if map_indexes is not None:
                wanted = set(map_indexes)
                values = [v for i, v in enumerate(values) if i in wanted]
            return values
        ti_key = TIKey(self.dag_id, task_id, self.run_id, -1)
        if include_prior_dates:  # this run's value, else the one of the latest earlier run
            raw = self.xcoms.get_latest(ti_key, key)
        else:
            raw = self.xcoms.get(ti_key, key)
        return default if raw is None else deserialize(raw)

    # -- branching ------------------------------------------------------------------------------
    def skip(self, task_ids: Iterable[str], *, ignore_trigger_rules: bool = False) -> None:
        """Ask the runtime to skip these downstream tasks once this attempt succeeds."""
        self.skip_requests.extend(task_ids)
        self.skip_ignores_trigger_rules = self.skip_ignores_trigger_rules or ignore_trigger_rules
