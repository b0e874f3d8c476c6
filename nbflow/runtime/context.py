"""The task context (Airflow's keys): what templates render with and what callables may ask for."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from nbflow.authoring.templating import macros
from nbflow.authoring.timetables import DataInterval
from nbflow.runtime.run_info import DagRunInfo

if TYPE_CHECKING:
    from nbflow.authoring.baseoperator import BaseOperator
    from nbflow.runtime.task_instance import RuntimeTaskInstance


class _LazyAccessor:
    """`var` and `conn` in templates; the secrets chain is built only when a template uses them."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._target: Any = None

    def _resolve(self) -> Any:
        if self._target is None:
            from nbflow.secrets import accessors
            if self._kind == "var":
                self._target = accessors.VariableNamespace()
            else:
                self._target = accessors.ConnectionAccessor()
        return self._target

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._resolve(), name)


def _ds(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d") if moment else None


def build_context(*, task: "BaseOperator", run: DagRunInfo, ti: "RuntimeTaskInstance",
                  params: dict[str, Any]) -> dict[str, Any]:
    """Airflow's context for one attempt."""
    dag = task.dag
    logical = run.logical_date
    ds = logical.strftime("%Y-%m-%d")
    ts = logical.isoformat()
    prev_ds = next_ds = None
    if dag.timetable.periodic and run.run_type != "manual":
        following = dag.timetable.next_after(DataInterval(run.data_interval_start, run.data_interval_end),
                                             start_date=None)
        next_ds = _ds(following.start) if following else None
        # From the schedule, not by subtracting this interval's length: months and weekday crons vary.
        prev_ds = _ds(dag.timetable.previous_start(run.data_interval_start))
    context: dict[str, Any] = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "dag_run": run,
        "run_id": run.run_id,
        "logical_date": logical,
        "execution_date": logical,
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": ts,
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "prev_ds": prev_ds,
        "prev_ds_nodash": prev_ds.replace("-", "") if prev_ds else None,
        "next_ds": next_ds,
        "next_ds_nodash": next_ds.replace("-", "") if next_ds else None,
        "yesterday_ds": macros.ds_add(ds, -1),
        "tomorrow_ds": macros.ds_add(ds, 1),
        "yesterday_ds_nodash": macros.ds_add(ds, -1).replace("-", ""),
        "tomorrow_ds_nodash": macros.ds_add(ds, 1).replace("-", ""),
        "params": params,
        "conf": _ConfView(),
        "macros": macros,
        "var": _LazyAccessor("var"),
        "conn": _LazyAccessor("conn"),
        "task_instance_key_str": f"{dag.dag_id}__{task.task_id}__{ds.replace('-', '')}",
        "map_index_template": getattr(task, "map_index_template", None),
        "inlets": list(task.inlets or []),
        "outlets": list(task.outlets or []),
        "test_mode": False,
        "try_number": ti.try_number,
        "expanded_ti_count": None,
        "templates_dict": getattr(task, "templates_dict", None),
        "prev_data_interval_start_success": None,
        "prev_data_interval_end_success": None,
        "prev_start_date_success": None,
        "prev_end_date_success": None,
    }
    context.update(dag.user_defined_macros)
    return context


class _ConfView:
    """`{{ conf.get('core', 'dags_folder') }}`, read when used."""

    def get(self, section: str, key: str, fallback: Any = None) -> Any:
        from nbflow.configuration import load_config
        return load_config().get(section, key, fallback)
