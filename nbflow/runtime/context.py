"""The task context (Airflow's keys): what templates render with and what callables may ask for."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import nbflow.runtime.kernel_sources  # noqa: F401 - installs where notebook tasks get kernels (its pools)
from nbflow.authoring.templating import macros
from nbflow.authoring.timetables import DataInterval
from nbflow.runtime.run_info import DagRunInfo
from nbflow.utils.state import DagRunType

if TYPE_CHECKING:
    from nbflow.authoring.baseoperator import BaseOperator
    from nbflow.authoring.dag import DAG
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


class _Deferred:
    """A context value computed when first read (and then kept)."""

    __slots__ = ("_compute", "_args", "_value")

    def __init__(self, compute: Callable[..., Any], *args: Any) -> None:
        self._compute, self._args = compute, args

    def value(self) -> Any:
        try:
            return self._value
        except AttributeError:
            self._value = self._compute(*self._args)
            return self._value

    def __repr__(self) -> str:  # dict's own repr() reads stored values: show the real one
        return repr(self.value())


_MISSING: Any = object()


class TaskContext(dict):  # type: ignore[type-arg]
    """Airflow's task context: a dict whose costly entries (prev_ds asks the schedule, ~0.3 ms with croniter)
    are computed on first read, so a task that never reads them never pays for them.

    Every key is present from the start. Reads by key (`[]`, get, pop, setdefault) compute one entry; anything
    that sees all values (`**context`, dict(context), items, values, copy, ==, |, copy/pickle) computes them all
    first, so no reader ever sees a placeholder. Overriding __iter__ makes CPython's dict merge (`**context`,
    dict(context), update) take its generic path through keys() and __getitem__ instead of reading storage.
    Copies and pickles are plain dicts, as the context was before.
    """

    __slots__ = ("_pending",)

    def __init__(self, values: dict[str, Any] | None = None, *, deferred: tuple[str, ...] = ()) -> None:
        dict.__init__(self, values or {})
        self._pending = list(deferred)

    def _resolve(self, key: str, raw: _Deferred) -> Any:
        value = raw.value()
        dict.__setitem__(self, key, value)
        return value

    def resolve_all(self) -> None:
        """Compute every deferred entry now: after this the stored values are the real ones."""
        pending = self._pending
        while pending:
            key = pending.pop()
            raw = dict.get(self, key, _MISSING)
            if type(raw) is _Deferred:
                self._resolve(key, raw)

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if type(value) is _Deferred:
            return self._resolve(key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            return default
        if type(value) is _Deferred:
            return self._resolve(key, value)
        return value

    def __iter__(self) -> Any:
        return dict.__iter__(self)

    def pop(self, key: str, *default: Any) -> Any:
        value = dict.get(self, key, _MISSING)
        if type(value) is _Deferred:
            self._resolve(key, value)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        self.resolve_all()
        return dict.popitem(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        return dict.setdefault(self, key, default)

    def items(self) -> Any:
        self.resolve_all()
        return dict.items(self)

    def values(self) -> Any:
        self.resolve_all()
        return dict.values(self)

    def copy(self) -> dict[str, Any]:
        self.resolve_all()
        return dict.copy(self)

    def __eq__(self, other: object) -> bool:
        self.resolve_all()
        if isinstance(other, TaskContext):
            other.resolve_all()
        return dict.__eq__(self, other)  # type: ignore[no-any-return]

    def __ne__(self, other: object) -> bool:
        self.resolve_all()
        if isinstance(other, TaskContext):
            other.resolve_all()
        return dict.__ne__(self, other)  # type: ignore[no-any-return]

    __hash__ = None  # type: ignore[assignment]

    def __or__(self, other: Any) -> Any:
        self.resolve_all()
        return dict.__or__(self, other)

    def __ror__(self, other: Any) -> Any:
        self.resolve_all()
        return dict.__ror__(self, other)  # type: ignore[operator]

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return dict, (self.copy(),)


def _date_str(moment: datetime) -> str:
    # isoformat() is several times faster than strftime and equal to it for four-digit years.
    return moment.date().isoformat() if moment.year >= 1000 else moment.strftime("%Y-%m-%d")


def _ds(moment: datetime | None) -> str | None:
    return _date_str(moment) if moment else None


def _nodash(ds: str | None) -> str | None:
    return ds.replace("-", "") if ds else None


class _Neighbours:
    """prev_ds and next_ds: the schedule is asked (croniter, ~0.15 ms each) only when a task reads them."""

    __slots__ = ("_dag", "_run", "_prev", "_next")

    def __init__(self, dag: "DAG", run: DagRunInfo) -> None:
        self._dag, self._run = dag, run
        self._prev = self._next = _MISSING

    def prev_ds(self) -> str | None:
        if self._prev is _MISSING:
            # From the schedule, not by subtracting this interval's length: months and weekday crons vary.
            self._prev = _ds(self._dag.timetable.previous_start(self._run.data_interval_start))
        return self._prev  # type: ignore[no-any-return]

    def next_ds(self) -> str | None:
        if self._next is _MISSING:
            run = self._run
            following = self._dag.timetable.next_after(DataInterval(run.data_interval_start, run.data_interval_end),
                                                       start_date=None)
            self._next = _ds(following.start) if following else None
        return self._next  # type: ignore[no-any-return]

    def prev_ds_nodash(self) -> str | None:
        return _nodash(self.prev_ds())

    def next_ds_nodash(self) -> str | None:
        return _nodash(self.next_ds())


def _ts_nodash_with_tz(logical: datetime) -> str:
    return logical.isoformat().replace("-", "").replace(":", "")


def _ds_add_nodash(ds: str, days: int) -> str:
    return macros.ds_add(ds, days).replace("-", "")


_DEFERRED_DATES = ("ts", "ts_nodash", "ts_nodash_with_tz", "yesterday_ds", "tomorrow_ds", "yesterday_ds_nodash",
                   "tomorrow_ds_nodash")
_DEFERRED_NEIGHBOURS = ("prev_ds", "prev_ds_nodash", "next_ds", "next_ds_nodash")


def _neighbour_entries(dag: "DAG", run: DagRunInfo) -> tuple[dict[str, Any], tuple[str, ...]]:
    """prev_ds, next_ds and their nodash forms: deferred for a scheduled run of a periodic DAG, else None."""
    if not (dag.timetable.periodic and run.run_type != DagRunType.MANUAL):
        return dict.fromkeys(_DEFERRED_NEIGHBOURS), ()
    around = _Neighbours(dag, run)
    return ({"prev_ds": _Deferred(around.prev_ds), "prev_ds_nodash": _Deferred(around.prev_ds_nodash),
             "next_ds": _Deferred(around.next_ds), "next_ds_nodash": _Deferred(around.next_ds_nodash)},
            _DEFERRED_NEIGHBOURS)


def build_context(*, task: "BaseOperator", run: DagRunInfo, ti: "RuntimeTaskInstance",
                  params: dict[str, Any]) -> TaskContext:
    """Airflow's context for one attempt; entries that cost time to compute are computed when first read."""
    dag = task.dag
    logical = run.logical_date
    ds = _date_str(logical)
    ds_nodash = ds.replace("-", "")
    neighbours, deferred_neighbours = _neighbour_entries(dag, run)
    context = TaskContext({
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
        "ds_nodash": ds_nodash,
        "ts": _Deferred(logical.isoformat),
        "ts_nodash": _Deferred(logical.strftime, "%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": _Deferred(_ts_nodash_with_tz, logical),
        **neighbours,
        "yesterday_ds": _Deferred(macros.ds_add, ds, -1),
        "tomorrow_ds": _Deferred(macros.ds_add, ds, 1),
        "yesterday_ds_nodash": _Deferred(_ds_add_nodash, ds, -1),
        "tomorrow_ds_nodash": _Deferred(_ds_add_nodash, ds, 1),
        "params": params,
        "conf": _ConfView(),
        "macros": macros,
        "var": _LazyAccessor("var"),
        "conn": _LazyAccessor("conn"),
        "task_instance_key_str": f"{dag.dag_id}__{task.task_id}__{ds_nodash}",
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
    }, deferred=_DEFERRED_DATES + deferred_neighbours)
    if dag.user_defined_macros:
        context.update(dag.user_defined_macros)
    return context


class _ConfView:
    """`{{ conf.get('core', 'dags_folder') }}`, read when used."""

    def get(self, section: str, key: str, fallback: Any = None) -> Any:
        from nbflow.configuration import load_config
        return load_config().get(section, key, fallback)
