"""A DAG as JSON: what the scheduler and the read-only commands need, without the user code that built it.

The DAG processor (`runtime/dag_processor.py`) parses DAG files in child processes and stores
`serialize_dag(dag)` in the metadata database; the scheduler and `dags list|show`, `tasks list`
rebuild a `SerializedDag` from it. A `SerializedDag` answers the same questions as a DAG about
structure (tasks, dependencies, groups, edge labels, schedule, limits) but cannot run a task:
callables, templates and operators' own arguments stay in the DAG file, loaded where tasks run.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nbflow.authoring.baseoperator import BaseOperator
    from nbflow.authoring.dag import DAG
    from nbflow.authoring.timetables import Timetable
    from nbflow.runtime.dag_source import DagSource

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# default_args whose value the scheduler or a listing reads (others may hold callables: not kept)
_KEPT_DEFAULT_ARGS = ("owner", "retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay", "pool",
                      "queue", "priority_weight", "depends_on_past", "email", "email_on_failure",
                      "email_on_retry", "execution_timeout", "trigger_rule")
_TASK_CALLBACKS = ("on_execute_callback", "on_failure_callback", "on_success_callback", "on_retry_callback",
                   "on_skipped_callback")

log = logging.getLogger(__name__)


# -- to JSON ------------------------------------------------------------------------------------------

def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _plain(value: Any) -> Any:
    """`value` as JSON can hold it (timedelta as seconds, datetime as ISO text, others as their repr)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)


def _timetable(dag: "DAG") -> dict[str, Any]:
    from nbflow.authoring.timetables import CronTimetable, DeltaTimetable, NullTimetable, OnceTimetable
    table = dag.timetable
    tz = getattr(dag.timezone, "key", None) or getattr(dag.timezone, "zone", None) or str(dag.timezone)
    if isinstance(table, NullTimetable):
        return {"kind": "none", "summary": None}
    if isinstance(table, OnceTimetable):
        return {"kind": "once", "summary": "@once"}
    if isinstance(table, CronTimetable):
        return {"kind": "cron", "expression": table.summary, "timezone": tz, "summary": table.summary}
    if isinstance(table, DeltaTimetable):
        return {"kind": "delta", "seconds": table.delta.total_seconds(), "summary": table.summary}
    from nbflow.authoring.custom_timetables import serialize_timetable
    return serialize_timetable(table)


def _groups(dag: "DAG") -> list[dict[str, Any]]:
    from nbflow.authoring.taskgroup import TaskGroup
    found: list[dict[str, Any]] = []

    def walk(group: TaskGroup, parent: str | None) -> None:
        for child in group.children.values():
            if isinstance(child, TaskGroup):
                found.append({"group_id": child.group_id, "label": child.label, "tooltip": child.tooltip or None,
                              "parent": parent, "children": [c.group_id if isinstance(c, TaskGroup) else c.task_id
                                                             for c in child.children.values()]})
                walk(child, child.group_id)

    walk(dag.task_group, None)
    return found


def task_fingerprint(task: "BaseOperator | SerializedTask") -> str | None:
    """What defines a task for drift (its kind, its code or command, its upstream tasks and main options),
    as a digest; a serialized task gives the one stored with it (None: stored before there was one)."""
    if isinstance(task, SerializedTask):
        return task.data.get("fingerprint")
    import hashlib
    body = getattr(task, "source", None) or getattr(task, "bash_command", None) or \
        (getattr(task, "input_nb", None), getattr(task, "parameters", None))
    parts = (type(task).__name__, repr(body), tuple(sorted(task.upstream_task_ids)), task.retries,
             str(task.trigger_rule), tuple(getattr(task, "setup", ()) or ()))
    return hashlib.sha1(repr(parts).encode()).hexdigest()


@functools.cache
def _class_facts(cls: type) -> tuple[str, bool]:
    """What a task's class alone decides (its dotted name, whether it marks an external task): once a class."""
    return (f"{cls.__module__}.{cls.__qualname__}",
            any(klass.__name__ == "ExternalTaskMarker" for klass in cls.__mro__))


def _task(task: "BaseOperator") -> dict[str, Any]:
    group = getattr(task, "task_group", None)
    email = task.email
    operator_class, external_marker = _class_facts(type(task))
    data = {
        "task_id": task.task_id,
        "label": task.label,
        "operator": task.operator_name,
        "operator_class": operator_class,
        "ui_color": task.ui_color,
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
        "retries": task.retries,
        "retry_delay": _seconds(task.retry_delay),
        "retry_exponential_backoff": bool(task.retry_exponential_backoff),
        "max_retry_delay": _seconds(task.max_retry_delay),
        "pool": task.pool,
        "pool_slots": task.pool_slots,
        "priority_weight": task.priority_weight,
        "weight_rule": str(getattr(task.weight_rule, "value", task.weight_rule)),
        "queue": task.queue,
        "execution_timeout": _seconds(task.execution_timeout),
        "depends_on_past": bool(task.depends_on_past),
        "ignore_first_depends_on_past": bool(getattr(task, "ignore_first_depends_on_past", False)),
        "wait_for_downstream": bool(task.wait_for_downstream),
        "max_active_tis_per_dag": task.max_active_tis_per_dag,
        "max_active_tis_per_dagrun": task.max_active_tis_per_dagrun,
        "is_mapped": bool(task.is_mapped),
        "task_group": group.group_id if group is not None else None,
        "start_date": _when(task.start_date),
        "end_date": _when(task.end_date),
        "owner": task.owner,
        "email": list(email) if isinstance(email, (list, tuple)) else email,
        "email_on_failure": bool(task.email_on_failure),
        "email_on_retry": bool(task.email_on_retry),
        "has_callbacks": {name: getattr(task, name, None) is not None for name in _TASK_CALLBACKS},
        # clearing it clears tasks in another DAG, whose target only the file's templates can render
        "external_marker": external_marker,
        "fingerprint": task_fingerprint(task),  # a kernel compares its cells with the saved file by it
    }
    # A setting at its usual value is left out (readers fall back to _TASK_DEFAULTS): two thirds of the
    # bytes a folder's cold parse encodes, sends and stores.
    return {key: value for key, value in data.items() if key not in _TASK_DEFAULTS
            or value != _TASK_DEFAULTS[key] or type(value) is not type(_TASK_DEFAULTS[key])}


_NO_CALLBACKS = {name: False for name in _TASK_CALLBACKS}
#: What a stored task without the key had: exact values only (a different value is always stored).
_TASK_DEFAULTS: dict[str, Any] = {
    "downstream": [], "trigger_rule": "all_success", "retries": 0, "retry_delay": 300.0,
    "retry_exponential_backoff": False, "max_retry_delay": None, "pool": "default_pool", "pool_slots": 1,
    "priority_weight": 1, "weight_rule": "downstream", "queue": "default", "execution_timeout": None,
    "depends_on_past": False, "ignore_first_depends_on_past": False, "wait_for_downstream": False,
    "max_active_tis_per_dag": None, "max_active_tis_per_dagrun": None, "is_mapped": False, "task_group": None,
    "start_date": None, "end_date": None, "email": None, "email_on_failure": True, "email_on_retry": True,
    "has_callbacks": _NO_CALLBACKS, "external_marker": False,
}


def serialize_dag(dag: "DAG", *, source_hash: str = "") -> dict[str, Any]:
    """The JSON form of `dag` (plain dicts, lists, strings and numbers)."""
    return {
        "format": FORMAT_VERSION,
        "dag_id": dag.dag_id,
        "fileloc": dag.fileloc,
        "source_hash": source_hash,
        "timetable": _timetable(dag),
        "start_date": _when(dag.start_date),
        "end_date": _when(dag.end_date),
        "catchup": bool(dag.catchup),
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "dagrun_timeout": _seconds(dag.dagrun_timeout),
        "default_args": {key: _plain(dag.default_args[key]) for key in _KEPT_DEFAULT_ARGS if key in dag.default_args},
        "tags": list(dag.tags),
        "params": _plain({key: dag.params.get(key) for key in dag.params}) if dag.params else {},
        "owner": dag.owner,
        "description": dag.description,
        "is_paused_upon_creation": dag.is_paused_upon_creation,
        "fail_fast": bool(getattr(dag, "fail_fast", False)),
        "has_callbacks": {"on_success_callback": dag.on_success_callback is not None,
                          "on_failure_callback": dag.on_failure_callback is not None},
        "edges": [[up, down, _plain(info)] for (up, down), info in sorted(dag.edge_info.items()) if info],
        "task_groups": _groups(dag),
        "root_children": [getattr(c, "group_id", None) if not getattr(c, "_is_task_node", False) else c.task_id
                          for c in dag.task_group.children.values()],
        "tasks": [_task(task) for task in dag.tasks],
    }


# -- from JSON ----------------------------------------------------------------------------------------

def _delta(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _date(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass
class SerializedTask:
    """One task as the scheduler sees it: ids, dependencies, retry and pool settings; no callable."""

    data: dict[str, Any]
    dag: "SerializedDag | None" = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"<SerializedTask {self.data['task_id']}>"

    def _stored(self, key: str) -> Any:
        return self.data.get(key, _TASK_DEFAULTS.get(key))

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__["data"]
        if name in _TASK_CALLBACKS:  # the callable stays in the file: say only whether there is one
            return True if data.get("has_callbacks", _NO_CALLBACKS).get(name) else None
        if name in data:
            return data[name]
        if name in _TASK_DEFAULTS:
            return _TASK_DEFAULTS[name]
        raise AttributeError(name)

    @property
    def dag_id(self) -> str:
        return self.dag.dag_id if self.dag is not None else ""

    def next_retry_delay(self, try_number: int, *, logical_date: datetime | None = None) -> timedelta:
        """As BaseOperator.next_retry_delay (the same rule, read from the stored settings)."""
        from nbflow.authoring.baseoperator import BaseOperator
        return BaseOperator.next_retry_delay(self, try_number, logical_date=logical_date)  # type: ignore[arg-type]

    @property
    def operator_name(self) -> str:
        return str(self.data["operator"])

    @property
    def is_external_marker(self) -> bool:
        """Whether the task is an ExternalTaskMarker (stored before this flag existed: told by its class)."""
        return bool(self.data.get("external_marker",
                                  self.data["operator_class"] == "nbflow.sensors.external_task.ExternalTaskMarker"))

    @property
    def upstream_task_ids(self) -> set[str]:
        return set(self.data["upstream"])

    @property
    def downstream_task_ids(self) -> set[str]:
        return set(self._stored("downstream"))

    @property
    def retry_delay(self) -> timedelta:
        return _delta(self._stored("retry_delay")) or timedelta(0)

    @property
    def max_retry_delay(self) -> timedelta | None:
        return _delta(self._stored("max_retry_delay"))

    @property
    def execution_timeout(self) -> timedelta | None:
        return _delta(self._stored("execution_timeout"))

    @property
    def start_date(self) -> datetime | None:
        return _date(self._stored("start_date"))

    @property
    def end_date(self) -> datetime | None:
        return _date(self._stored("end_date"))

    @property
    def task_group(self) -> "SerializedGroup | None":
        group_id = self._stored("task_group")
        return None if self.dag is None or group_id is None else self.dag.groups.get(group_id)


@dataclass
class SerializedGroup:
    """A task group: its id, label and children (tasks and groups), for drawing."""

    group_id: str | None
    label: str | None
    tooltip: str | None
    children: dict[str, Any] = field(default_factory=dict)


class SerializedDag:
    """A DAG rebuilt from its JSON form: enough for scheduling and listings, never for running a task."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.dag_id: str = data["dag_id"]
        self.fileloc: str = data["fileloc"]
        self.source_hash: str = data.get("source_hash", "")
        self.start_date = _date(data["start_date"])
        self.end_date = _date(data["end_date"])
        self.catchup: bool = data["catchup"]
        self.max_active_runs: int | None = data["max_active_runs"]
        self.max_active_tasks: int | None = data["max_active_tasks"]
        self.dagrun_timeout = _delta(data["dagrun_timeout"])
        self.default_args: dict[str, Any] = data["default_args"]
        self.tags: list[str] = data["tags"]
        self.params: dict[str, Any] = data["params"]
        self.owner: str = data["owner"]
        self.description: str | None = data["description"]
        self.is_paused_upon_creation: bool | None = data["is_paused_upon_creation"]
        self.fail_fast: bool = data.get("fail_fast", False)
        self.has_callbacks: dict[str, bool] = data["has_callbacks"]
        self.edge_info = {(up, down): info for up, down, info in data["edges"]}
        self._task_dict: dict[str, SerializedTask] | None = None  # built on first use: a listing needs no task
        self._groups: dict[str, SerializedGroup] = {}
        self._task_group: SerializedGroup | None = None
        self._timetable: "Timetable | None" = None

    @property
    def task_dict(self) -> dict[str, SerializedTask]:
        if self._task_dict is None:
            self._task_dict = {t["task_id"]: SerializedTask(t, self) for t in self.data["tasks"]}
        return self._task_dict

    @property
    def task_group(self) -> SerializedGroup:
        if self._task_group is None:
            self._task_group = self._build_groups()
        return self._task_group

    @property
    def groups(self) -> dict[str, SerializedGroup]:
        self.task_group  # noqa: B018 - builds them
        return self._groups

    @property
    def on_success_callback(self) -> bool | None:
        """Whether the DAG has one (the callable stays in the file; it runs in a child that loads it)."""
        return True if self.has_callbacks.get("on_success_callback") else None

    @property
    def on_failure_callback(self) -> bool | None:
        return True if self.has_callbacks.get("on_failure_callback") else None

    @classmethod
    def from_dag(cls, dag: "DAG") -> "SerializedDag":
        """A DAG's serialized form, as the database would give it back (JSON round trip included)."""
        import json
        return cls(json.loads(json.dumps(serialize_dag(dag))))

    def __repr__(self) -> str:
        return f"<SerializedDag {self.dag_id}: {len(self.task_dict)} tasks>"

    def _build_groups(self) -> SerializedGroup:
        groups = self._groups
        for group in self.data["task_groups"]:
            groups[group["group_id"]] = SerializedGroup(group["group_id"], group["label"], group["tooltip"])
        root = SerializedGroup(None, None, None)
        tasks = self.task_dict

        def fill(target: SerializedGroup, names: list[str]) -> None:
            for name in names:
                target.children[name] = groups[name] if name in groups else tasks[name]

        fill(root, self.data["root_children"])
        for group in self.data["task_groups"]:
            fill(groups[group["group_id"]], group["children"])
        return root

    @property
    def tasks(self) -> list[SerializedTask]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> SerializedTask:
        from nbflow.exceptions import TaskNotFound
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFound(f"DAG {self.dag_id!r} has no task {task_id!r}") from None

    def partial_subset(self, task_ids: "Iterable[str]", *, include_downstream: bool = False,
                       include_upstream: bool = False) -> set[str]:
        """Task ids selected plus, when asked, everything up- or downstream of them (as DAG.partial_subset)."""
        from nbflow.authoring.dependencies import reachable_task_ids
        return reachable_task_ids(self.task_dict, task_ids, downstream=include_downstream, upstream=include_upstream)

    def get_edge_info(self, upstream_task_id: str, downstream_task_id: str) -> dict[str, Any]:
        return self.edge_info.get((upstream_task_id, downstream_task_id), {})

    @property
    def source(self) -> "DagSource":
        """Where the DAG comes from, for workloads and callbacks (a file, read where it is loaded)."""
        from nbflow.runtime.dag_source import DagSource
        if "source" in self.data:  # kernel cells
            return DagSource.from_dict(self.data["source"])
        kind = "notebook" if self.fileloc.endswith(".ipynb") else "python"
        return DagSource(kind, self.fileloc, self.source_hash)  # type: ignore[arg-type]

    @property
    def schedule_summary(self) -> str | None:
        """How a listing shows the schedule: `@daily`, `0 6 * * *`, `1 day, 0:00:00`, `@once`, or None."""
        return self.data["timetable"].get("summary")

    @property
    def timetable(self) -> "Timetable":
        """The schedule rebuilt; a custom Timetable class comes from the plugins folder or a package."""
        if self._timetable is None:
            from zoneinfo import ZoneInfo

            from nbflow.authoring.timetables import CronTimetable, DeltaTimetable, NullTimetable, OnceTimetable
            spec = self.data["timetable"]
            kind = spec["kind"]
            if kind == "cron":
                name = spec.get("timezone") or "UTC"
                tz = timezone.utc if name in ("UTC", "utc") else ZoneInfo(name)
                self._timetable = CronTimetable(spec["expression"], dag_id=self.dag_id, timezone=tz)
            elif kind == "delta":
                self._timetable = DeltaTimetable(timedelta(seconds=spec["seconds"]), dag_id=self.dag_id)
            elif kind == "once":
                self._timetable = OnceTimetable()
            elif kind == "custom":
                self._timetable = _custom_timetable(self.dag_id, spec)
            else:
                self._timetable = NullTimetable()
        return self._timetable


def _custom_timetable(dag_id: str, spec: dict[str, Any]) -> "Timetable":
    """A custom schedule rebuilt by its class; one that cannot be (its plugin removed since the DAG was
    stored, a module that fails) schedules nothing and says why once per process."""
    from nbflow.authoring.custom_timetables import deserialize_timetable
    from nbflow.authoring.timetables import NullTimetable
    try:
        return deserialize_timetable(spec)
    except Exception as err:  # noqa: BLE001 - user code: one DAG's schedule never stops the scheduler
        if dag_id not in _warned_timetables:
            _warned_timetables.add(dag_id)
            log.warning("DAG %s schedules no runs: its Timetable %s.%s cannot be rebuilt: %s", dag_id,
                        spec.get("module"), spec.get("qualname"), err)
        return NullTimetable()


_warned_timetables: set[str] = set()

__all__ = ["SerializedDag", "SerializedGroup", "SerializedTask", "serialize_dag", "task_fingerprint"]
