"""LatestOnlyOperator: let downstream tasks run only for the most recent scheduled interval."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.authoring.timetables import DataInterval
from nbflow.operators.skipping import skip_downstream
from nbflow.utils.state import DagRunType


class LatestOnlyOperator(BaseOperator):
    """Skips its downstream tasks unless now lies within the run's next schedule interval."""

    ui_color = "#e9ffdb"
    inherits_from_skipmixin = True

    def execute(self, context: dict[str, Any]) -> Any:
        dag_run = context.get("dag_run")
        if dag_run is not None and getattr(dag_run, "run_type", DagRunType.MANUAL) == DagRunType.MANUAL:
            self.log_info(context, "manual run: letting downstream tasks run")
            return list(self.downstream_task_ids)
        timetable = self.dag.timetable
        interval_end = context["data_interval_end"]
        current = DataInterval(context["data_interval_start"], interval_end)
        following = timetable.next_after(current, start_date=None) if timetable.periodic else None
        now = datetime.now(timezone.utc)
        if following is None or following.start < now <= following.end:
            return list(self.downstream_task_ids)
        self.log_info(context, f"not the latest run (now {now:%Y-%m-%dT%H:%M}); skipping downstream tasks")
        skip_downstream(self, context["ti"], all_downstream=False)
        return []

    @staticmethod
    def log_info(context: dict[str, Any], message: str) -> None:
        print(message)
