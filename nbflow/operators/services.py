"""What the runtime lends a running task that needs the metadata database (operators cannot import the runtime).

Sensors read when their first poke was; TriggerDagRunOperator creates and watches runs of other
DAGs; ExternalTaskSensor reads other DAGs' task states. The runtime puts an implementation in the
task instance (`context["ti"].nbflow_services`, runtime/task_services.py), so the context keeps
Airflow's keys; these classes only see the protocol and keep to their layer.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from nbflow.exceptions import NbflowException

ATTRIBUTE = "nbflow_services"


class TaskServices(Protocol):
    """Use cases of the metadata database that tasks call; every method opens its own transaction."""

    def first_poke_at(self, dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int
                      ) -> datetime | None:
        """When the first poke of this try of a rescheduled sensor started (None: none yet)."""

    def reschedule_count(self, dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int) -> int:
        """How many times this try of the sensor was rescheduled."""

    def dag_exists(self, dag_id: str) -> bool:
        """Whether the DAG is in the dags folder (or recorded in the metadata database)."""

    def task_exists(self, dag_id: str, task_id: str) -> bool:
        """Whether the DAG has that task; the DAG must exist."""

    def trigger_dag(self, dag_id: str, *, run_id: str, logical_date: datetime, conf: Mapping[str, Any],
                    replace: bool) -> str:
        """Create a queued run (DagNotFound names an unknown DAG; DagRunAlreadyExists unless `replace`)."""

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The run's state (None: no such run)."""

    def task_states(self, dag_id: str, logical_date: datetime, task_ids: Sequence[str] | None
                    ) -> list[str | None] | None:
        """States of the tasks in the DAG's run at logical_date (task_ids None: of its runs themselves, for a
        whole-DAG check); None: the DAG has no run at logical_date."""

    def run_states_at(self, dag_id: str, logical_date: datetime) -> list[str]:
        """States of the DAG's runs at logical_date (usually one, none when it has not run)."""


def services_of(context: Mapping[str, Any]) -> TaskServices:
    """The runtime's services in this task's context; an error when the task runs outside the runtime."""
    services = getattr(context.get("ti"), ATTRIBUTE, None)
    if services is None:
        raise NbflowException("this task needs the metadata database, but its task instance offers no services; "
                              f"run it through the scheduler, `nbflow tasks test` or `nbflow dags test`")
    return services
