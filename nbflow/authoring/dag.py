"""DAG: a set of tasks with dependencies, a schedule and defaults; `with DAG(...)` and `@dag`."""
from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.authoring import context as ctx
from nbflow.authoring.params import ParamsDict
from nbflow.authoring.taskgroup import TaskGroup
from nbflow.authoring.timetables import Timetable, make_timetable
from nbflow.exceptions import DagCycleException, DagDefinitionError, DuplicateTaskIdFound, TaskNotFound
from nbflow.utils.registry import Registry
from nbflow.utils.timezone import UTC, coerce_datetime

if TYPE_CHECKING:
    import jinja2

    from nbflow.authoring.baseoperator import BaseOperator

KEY_RE = re.compile(r"^[\w.-]+$")
_NBFLOW_DIR = str(Path(__file__).resolve().parents[1])


def validate_key(kind: str, key: Any, *, max_length: int = 250) -> str:
    if not isinstance(key, str) or not key:
        raise DagDefinitionError(f"{kind} must be a non-empty string, got {key!r}")
    if len(key) > max_length:
        raise DagDefinitionError(f"{kind} {key[:40]!r}... is longer than {max_length} characters")
    if not KEY_RE.match(key):
        raise DagDefinitionError(f"{kind} {key!r} may only contain letters, digits, '_', '-' and '.'")
    return key


def _caller_file() -> str:
    """The first file up the stack that is not nbflow itself: the DAG file."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_NBFLOW_DIR) and not name.startswith("<frozen"):
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


class DAG:
    """Airflow's DAG: tasks, dependencies, a schedule, defaults for its tasks."""

    def __init__(self, dag_id: str, description: str | None = None, schedule: Any = None, *,
                 start_date: datetime | None = None, end_date: datetime | None = None,
                 template_searchpath: str | Iterable[str] | None = None, template_undefined: Any = None,
                 user_defined_macros: dict[str, Any] | None = None, user_defined_filters: dict[str, Any] | None = None,
                 default_args: dict[str, Any] | None = None, max_active_tasks: int = 16, max_active_runs: int = 16,
                 dagrun_timeout: timedelta | None = None, catchup: bool = False,
                 on_success_callback: Any = None, on_failure_callback: Any = None, doc_md: str | None = None,
                 params: dict[str, Any] | None = None, access_control: Any = None,
                 is_paused_upon_creation: bool | None = None, jinja_environment_kwargs: dict[str, Any] | None = None,
                 render_template_as_native_obj: bool = False, tags: Iterable[str] | None = None,
                 owner_links: dict[str, str] | None = None, auto_register: bool = True, fail_fast: bool = False,
                 dag_display_name: str | None = None, max_consecutive_failed_dag_runs: int = 0,
                 schedule_interval: Any = None, concurrency: int | None = None, fileloc: str | None = None,
                 timetable: Any = None, default_view: str = "grid", orientation: str = "LR",
                 sla_miss_callback: Any = None) -> None:
        self.dag_id = validate_key("dag_id", dag_id)
        self.fileloc = fileloc or _caller_file()
        self.description = description
        self.default_args = dict(default_args or {})
        given_start = start_date or self.default_args.get("start_date")
        # Airflow's DAG timezone: the start date's own (pendulum or zoneinfo), else UTC; cron reads it.
        self.timezone = given_start.tzinfo if isinstance(given_start, datetime) and given_start.tzinfo is not None \
            and given_start.utcoffset() is not None else UTC
        self.start_date = coerce_datetime(given_start, where=f"DAG {dag_id!r}")
        self.end_date = coerce_datetime(end_date or self.default_args.get("end_date"), where=f"DAG {dag_id!r}")
        if schedule is None and schedule_interval is not None:  # Airflow 2 spelling
            schedule = schedule_interval
        if schedule is None and timetable is not None:  # Airflow 2.2's spelling
            schedule = timetable
        self.schedule = schedule
        self.timetable: Timetable = make_timetable(schedule, dag_id=dag_id, timezone=self.timezone)
        self.template_searchpath = [template_searchpath] if isinstance(template_searchpath, str) \
            else list(template_searchpath or [])
        self.template_undefined = template_undefined
        self.user_defined_macros = dict(user_defined_macros or {})
        self.user_defined_filters = dict(user_defined_filters or {})
        self.max_active_tasks = concurrency or max_active_tasks
        self.max_active_runs = max_active_runs
        self.dagrun_timeout = dagrun_timeout
        self.catchup = catchup
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        self.doc_md = doc_md
        # update(), not {**a, **b}: unpacking a ParamsDict yields bare values and drops each Param's schema
        self.params = ParamsDict(self.default_args.get("params") or {})
        self.params.update(params or {})
        self.access_control = access_control
        self.is_paused_upon_creation = is_paused_upon_creation
        self.jinja_environment_kwargs = dict(jinja_environment_kwargs or {})
        self.render_template_as_native_obj = render_template_as_native_obj
        self.tags = sorted(set(tags or []))
        self.owner_links = dict(owner_links or {})
        self.auto_register = auto_register
        self.fail_fast = fail_fast
        self.dag_display_name = dag_display_name or dag_id
        self.max_consecutive_failed_dag_runs = max_consecutive_failed_dag_runs
        # Airflow 2 display settings and SLA callback: kept so its DAG files load, not used.
        self.default_view, self.orientation, self.sla_miss_callback = default_view, orientation, sla_miss_callback
        self.task_dict: dict[str, BaseOperator] = {}
        self.task_group = TaskGroup(None, dag=self)
        self.edge_info: dict[tuple[str, str], dict[str, Any]] = {}
        self._template_env: jinja2.Environment | None = None

    # -- context manager ----------------------------------------------------------------------
    def __enter__(self) -> "DAG":
        ctx.push_dag(self)
        return self

    def __exit__(self, *exc: object) -> None:
        ctx.pop_dag()
        if self.auto_register and exc[0] is None:
            ctx.autoregistered.append(self)

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    # -- tasks ----------------------------------------------------------------------------------
    def add_task(self, task: "BaseOperator") -> None:
        if task.task_id in self.task_dict and self.task_dict[task.task_id] is not task:
            raise DuplicateTaskIdFound(f"{self.fileloc}: DAG {self.dag_id!r}: task id {task.task_id!r} "
                                       f"is defined twice; give each task a unique task_id")
        self.task_dict[task.task_id] = task

    def add_tasks(self, tasks: Iterable["BaseOperator"]) -> None:
        for task in tasks:
            task.dag = self

    @property
    def tasks(self) -> list["BaseOperator"]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> "BaseOperator":
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFound(f"DAG {self.dag_id!r} has no task {task_id!r}; "
                               f"its tasks are: {', '.join(sorted(self.task_dict)) or 'none'}") from None

    @property
    def roots(self) -> list["BaseOperator"]:
        return [t for t in self.tasks if not t.upstream_task_ids]

    @property
    def leaves(self) -> list["BaseOperator"]:
        return [t for t in self.tasks if not t.downstream_task_ids]

    def set_edge_info(self, upstream_task_id: str, downstream_task_id: str, info: dict[str, Any]) -> None:
        self.edge_info[(upstream_task_id, downstream_task_id)] = info

    def get_edge_info(self, upstream_task_id: str, downstream_task_id: str) -> dict[str, Any]:
        return self.edge_info.get((upstream_task_id, downstream_task_id), {})

    def topological_sort(self) -> list["BaseOperator"]:
        """Tasks, upstream before downstream; a cycle raises DagCycleException naming it."""
        self.check_cycle()
        order: list[BaseOperator] = []
        indegree = {tid: len(t.upstream_task_ids) for tid, t in self.task_dict.items()}
        ready = [tid for tid in self.task_dict if indegree[tid] == 0]
        while ready:
            tid = ready.pop(0)
            order.append(self.task_dict[tid])
            for down in sorted(self.task_dict[tid].downstream_task_ids):
                indegree[down] -= 1
                if indegree[down] == 0:
                    ready.append(down)
        return order

    def check_cycle(self) -> None:
        """Raise DagCycleException with the tasks of the first cycle found."""
        white, grey, black = 0, 1, 2
        color = dict.fromkeys(self.task_dict, white)
        for start in self.task_dict:
            if color[start] != white:
                continue
            path: list[str] = [start]
            stack = [iter(sorted(self.task_dict[start].downstream_task_ids))]
            color[start] = grey
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    color[path.pop()] = black
                    stack.pop()
                elif color.get(nxt) == grey:
                    cycle = path[path.index(nxt):] + [nxt]
                    raise DagCycleException(self.dag_id, cycle)
                elif color.get(nxt) == white:
                    color[nxt] = grey
                    path.append(nxt)
                    stack.append(iter(sorted(self.task_dict[nxt].downstream_task_ids)))

    def validate(self) -> None:
        """Checks a DagBag runs once the file has loaded: cycles, dangling dependencies."""
        for task in self.tasks:
            for other in task.upstream_task_ids | task.downstream_task_ids:
                if other not in self.task_dict:
                    raise DagDefinitionError(f"{self.fileloc}: DAG {self.dag_id!r}: task {task.task_id!r} depends on "
                                             f"{other!r}, which is not in this DAG")
        self.check_cycle()

    def partial_subset(self, task_ids: Iterable[str], *, include_downstream: bool = False,
                       include_upstream: bool = False) -> set[str]:
        """Task ids selected plus, when asked, everything up- or downstream of them."""
        from nbflow.authoring.dependencies import reachable_task_ids
        return reachable_task_ids(self.task_dict, task_ids, downstream=include_downstream, upstream=include_upstream)

    # -- templating -----------------------------------------------------------------------------
    def get_template_env(self) -> "jinja2.Environment":
        if self._template_env is None:
            from nbflow.authoring.templating import make_template_env
            self._template_env = make_template_env(self)
        return self._template_env

    @property
    def folder(self) -> str:
        return str(Path(self.fileloc).parent)

    @property
    def owner(self) -> str:
        return ", ".join(sorted({t.owner for t in self.tasks})) or "nbflow"

    def iter_dagrun_infos_between(self, earliest: datetime, latest: datetime) -> list[Any]:
        return self.timetable.intervals_between(earliest, latest)

    def test(self, logical_date: datetime | None = None, run_conf: dict[str, Any] | None = None,
             **airflow_only: Any) -> Any:
        """Airflow's `dag.test()`: run every task once, in this process, printing each task's state and log
        as it ends; returns the run's result. (Airflow's other arguments, such as conn_file_path, are accepted
        and ignored.) The engine is found through the `nbflow.dag_testers` entry point, since a DAG
        (authoring) does not import the runtime."""
        tester = dag_testers.get("default", where="DAG.test")
        return tester(self, logical_date=coerce_datetime(logical_date, where=f"DAG {self.dag_id!r} test")
                      if logical_date is not None else None, run_conf=run_conf, echo_logs=True)


#: What runs `DAG.test()`: the runtime registers its engine here through an entry point.
dag_testers: Registry[Callable[..., Any]] = Registry("DAG test runner", entry_points="nbflow.dag_testers")


def dag(dag_id: str | Callable[..., Any] = "", **dag_kwargs: Any) -> Any:
    """`@dag`: calling the decorated function builds the DAG (its parameters become DAG params)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., DAG]:
        signature = inspect.signature(fn)
        defaults = {name: p.default for name, p in signature.parameters.items()
                    if p.default is not inspect.Parameter.empty}

        @functools.wraps(fn)
        def build(*args: Any, **kwargs: Any) -> DAG:
            bound = signature.bind_partial(*args, **kwargs)
            # Function defaults and arguments set the value of a declared Param, keeping its schema.
            params = ParamsDict(dag_kwargs.get("params") or {})
            params.update({**defaults, **bound.arguments})
            kw = {**dag_kwargs, "params": params}
            kw.setdefault("doc_md", fn.__doc__)
            kw.setdefault("fileloc", inspect.getsourcefile(fn) or _caller_file())
            with DAG(dag_id or fn.__name__, **kw) as new_dag:
                from nbflow.authoring.xcom_arg import DagParamArg
                fn(**{name: DagParamArg(new_dag, name) for name in signature.parameters})
            return new_dag

        return build

    if callable(dag_id):
        fn, dag_id = dag_id, ""
        return decorate(fn)
    return decorate
