"""The runtime's implementation of `nbflow.operators.services.TaskServices`, handed to tasks in their context.

Built for every attempt and cheap until used: the configuration, the database engine and the DAG
folder are opened only when a task calls a method (a sensor's reschedule, a TriggerDagRunOperator),
inside the attempt's own process, like the metastore secrets backend does.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.store.keys import TIKey
from nbflow.utils.state import DagRunType

if TYPE_CHECKING:
    from nbflow.runtime.environment import Environment


class RuntimeTaskServices:
    """Metadata database use cases for tasks (see operators/services.py); one transaction per call."""

    def __init__(self, env: "Environment | None" = None) -> None:
        self._env = env

    @property
    def env(self) -> "Environment":
        if self._env is None:
            from nbflow.configuration import load_config
            from nbflow.runtime.environment import Environment
            self._env = Environment.from_config(load_config())
        return self._env

    # -- sensors --------------------------------------------------------------------------------
    def first_poke_at(self, dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int
                      ) -> datetime | None:
        from nbflow.store import reschedules, session_scope
        with session_scope(self.env.readers) as session:
            return reschedules.first_poke_at(session, TIKey(dag_id, task_id, run_id, map_index), try_number)

    def reschedule_count(self, dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int) -> int:
        from nbflow.store import reschedules, session_scope
        with session_scope(self.env.readers) as session:
            return reschedules.count_reschedules(session, TIKey(dag_id, task_id, run_id, map_index), try_number)

    # -- other DAGs -----------------------------------------------------------------------------
    def dag_exists(self, dag_id: str) -> bool:
        from nbflow.exceptions import DagNotFound
        from nbflow.runtime.api_dags import dag_structure
        from nbflow.store import dags as dag_rows
        from nbflow.store import session_scope
        try:  # as the DAG processor stored it: no DAG file is imported in the attempt's process
            dag_structure(self.env, dag_id)
            return True
        except DagNotFound:
            pass
        with session_scope(self.env.readers) as session:
            return dag_rows.get_dag_row(session, dag_id) is not None

    def task_exists(self, dag_id: str, task_id: str) -> bool:
        from nbflow.runtime.api_dags import dag_structure
        return task_id in dag_structure(self.env, dag_id).task_dict

    def trigger_dag(self, dag_id: str, *, run_id: str, logical_date: datetime, conf: Mapping[str, Any],
                    replace: bool) -> str:
        from nbflow.runtime.dagruns import create_run, record_dags
        from nbflow.runtime.inprocess import manual_interval
        from nbflow.store import dags as dag_rows
        from nbflow.store import runs as run_rows
        from nbflow.store import session_scope
        dag = self.env.get_dag(dag_id)  # DagNotFound: "DAG 'x' not found in <folder>; known: ..."
        dag.params.validate(dict(conf), where=f"DAG {dag_id!r}")
        with session_scope(self.env.sessions) as session:
            if dag_rows.get_dag_row(session, dag_id) is None:
                record_dags(session, [dag], paused_at_creation=self.env.config.getboolean(
                    "core", "dags_are_paused_at_creation"))
            if replace:
                run_rows.delete_dag_run(session, dag_id, run_id)
            create_run(session, dag, run_type=DagRunType.MANUAL, logical_date=logical_date,
                       interval=manual_interval(dag, logical_date), conf=dict(conf), run_id=run_id,
                       triggered_by="operator")
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        from nbflow.store import runs as run_rows
        from nbflow.store import session_scope
        with session_scope(self.env.readers) as session:
            row = run_rows.get_dag_run(session, dag_id, run_id)
        return None if row is None else row.state

    def _runs_at(self, session: Any, dag_id: str, logical_date: datetime) -> list[Any]:
        from nbflow.store import runs as run_rows
        return [run for run in run_rows.list_dag_runs(session, dag_id, limit=None) if run.logical_date == logical_date]

    def run_states_at(self, dag_id: str, logical_date: datetime) -> list[str]:
        from nbflow.store import session_scope
        with session_scope(self.env.readers) as session:
            return [run.state for run in self._runs_at(session, dag_id, logical_date)]

    def task_states(self, dag_id: str, logical_date: datetime, task_ids: Sequence[str] | None
                    ) -> list[str | None] | None:
        from nbflow.store import session_scope
        from nbflow.store import task_instances as ti_rows
        with session_scope(self.env.readers) as session:
            runs = self._runs_at(session, dag_id, logical_date)
            if not runs:
                return None
            if task_ids is None:
                return [run.state for run in runs]
            rows = ti_rows.get_task_instances(session, dag_id, runs[0].run_id, task_ids=list(task_ids))
        found = {row.task_id for row in rows}
        return [row.state for row in rows] + [None] * len(set(task_ids) - found)


class InProcessTaskServices(RuntimeTaskServices):
    """For runs in one process (`dags test`): no scheduler runs, so nothing here needs one.

    A sensor's pokes are remembered here, not in the database: the in-process runner calls
    `poke_started` before each attempt (in its own process, so an isolated attempt's child sees it
    too). A triggered DAG runs at once, in this process, to its end, as `dags test` would run it;
    `run_state` then answers from that result. Other DAGs' task states still come from the database.
    """

    def __init__(self, env: "Environment | None" = None, *, log_folder: Path | None = None) -> None:
        super().__init__(env)
        self._pokes: dict[tuple[str, str, str, int, int], list[datetime]] = {}
        self._triggered: dict[tuple[str, str], str] = {}
        self._log_folder = log_folder

    def trigger_dag(self, dag_id: str, *, run_id: str, logical_date: datetime, conf: Mapping[str, Any],
                    replace: bool) -> str:
        from nbflow.exceptions import DagRunAlreadyExists
        from nbflow.runtime.inprocess import make_run_info, run_dag_in_process
        if (dag_id, run_id) in self._triggered and not replace:
            raise DagRunAlreadyExists(dag_id, run_id)
        dag = self.env.get_dag(dag_id)
        dag.params.validate(dict(conf), where=f"DAG {dag_id!r}")
        run = make_run_info(dag, logical_date, dict(conf), run_id=run_id)
        folder = self._log_folder or self.env.config.log_folder
        self._triggered[(dag_id, run_id)] = run_dag_in_process(dag, run=run, log_folder=folder).state
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        return self._triggered.get((dag_id, run_id))

    def poke_started(self, dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int,
                     at: datetime) -> None:
        self._pokes.setdefault((dag_id, task_id, run_id, map_index, try_number), []).append(at)

    def first_poke_at(self, dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int
                      ) -> datetime | None:
        pokes = self._pokes.get((dag_id, task_id, run_id, map_index, try_number))
        return pokes[0] if pokes else None

    def reschedule_count(self, dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int) -> int:
        return max(len(self._pokes.get((dag_id, task_id, run_id, map_index, try_number), [])) - 1, 0)
