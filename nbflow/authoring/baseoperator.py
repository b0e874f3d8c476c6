"""BaseOperator: one task's settings, dependencies and templating. Subclasses write `execute(context)`."""
from __future__ import annotations

import copy
import copyreg
import functools
import hashlib
import inspect
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from nbflow.authoring import context as ctx
from nbflow.authoring.dependencies import DependencyMixin, chain, cross_downstream, flatten, operators_of
from nbflow.authoring.params import ParamsDict
from nbflow.authoring.trigger_rule import TriggerRule
from nbflow.authoring.weight_rule import WeightRule
from nbflow.exceptions import DagDefinitionError
from nbflow.utils.timezone import coerce_datetime, parse_duration

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.authoring.taskgroup import TaskGroup

__all__ = ["BaseOperator", "chain", "cross_downstream"]

# Airflow's core.max_task_retry_delay default: no backed-off retry waits longer than a day.
_MAX_RETRY_DELAY_SECONDS = 24 * 60 * 60

# Arguments every operator takes; default_args may set any of them, plus any argument of a subclass.
_BASE_DEFAULTS: dict[str, Any] = {
    "owner": "nbflow", "email": None, "email_on_retry": True, "email_on_failure": True, "retries": 0,
    "retry_delay": timedelta(seconds=300), "retry_exponential_backoff": False, "max_retry_delay": None,
    "start_date": None, "end_date": None, "depends_on_past": False, "wait_for_downstream": False,
    "priority_weight": 1, "weight_rule": WeightRule.DOWNSTREAM, "queue": "default", "pool": "default_pool", "pool_slots": 1,
    "execution_timeout": None, "on_execute_callback": None, "on_failure_callback": None,
    "on_success_callback": None, "on_retry_callback": None, "on_skipped_callback": None,
    "trigger_rule": TriggerRule.ALL_SUCCESS, "resources": None, "run_as_user": None,
    "max_active_tis_per_dag": None, "max_active_tis_per_dagrun": None, "executor": None, "do_xcom_push": True,
    "multiple_outputs": False, "doc": None, "doc_md": None, "doc_json": None, "doc_yaml": None, "doc_rst": None,
    "outlets": None, "inlets": None, "map_index_template": None, "sla": None, "task_display_name": None,
    "executor_config": None, "ignore_first_depends_on_past": False,
}


_BASE_KEYS = frozenset(_BASE_DEFAULTS)


@functools.cache
def _plain_base_attributes(cls: type) -> bool:
    """True when no class in the MRO turns a base argument into a property, so the defaults can be
    written straight into __dict__ (setattr for 43 names per task was the top cost of parsing DAG files)."""
    return not any(hasattr(vars(klass).get(name), "__set__") for klass in cls.__mro__ for name in _BASE_KEYS)


@functools.cache
def _accepted_args(cls: type) -> frozenset[str]:
    """Every keyword some __init__ along the class's MRO accepts by name."""
    names: set[str] = set(_BASE_DEFAULTS)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        init = getattr(init, "__wrapped__", init)
        for name, p in inspect.signature(init).parameters.items():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self":
                names.add(name)
    return frozenset(names)


@functools.cache
def _copied_by_dict(cls: type) -> bool:
    """True when copy.copy of an instance is a new instance with the same __dict__ entries: the class
    customises no step of copying (copyreg, __copy__, __reduce__, state, __new__ arguments) and has no slots."""
    return (cls not in copyreg.dispatch_table and getattr(cls, "__copy__", None) is None
            and cls.__reduce_ex__ is object.__reduce_ex__ and cls.__reduce__ is object.__reduce__
            and cls.__getstate__ is object.__getstate__ and getattr(cls, "__setstate__", None) is None
            and getattr(cls, "__getnewargs_ex__", None) is None and getattr(cls, "__getnewargs__", None) is None
            and not any("__slots__" in vars(klass) for klass in cls.__mro__ if klass is not object))


def _apply_defaults(init: Callable[..., None]) -> Callable[..., None]:
    """Fill keyword arguments from the DAG's, the task group's and the task's own default_args."""

    @functools.wraps(init)
    def wrapper(self: "BaseOperator", *args: Any, **kwargs: Any) -> None:
        state = self.__dict__
        if state.get("_init_depth"):  # a subclass's __init__ calling super().__init__: the outermost did the work
            init(self, *args, **kwargs)
            return
        dag = kwargs.get("dag") or ctx.current_dag()
        group = kwargs.get("task_group") or ctx.current_group(dag)
        defaults: dict[str, Any] = {}
        if dag is not None and dag.default_args:
            defaults.update(dag.default_args)
        if group is not None and group.default_args:
            defaults.update(group.default_args)
        if kwargs.get("default_args"):
            defaults.update(kwargs["default_args"])
        params = ParamsDict(defaults.get("params") or {})
        if kwargs.get("params"):
            params.update(kwargs["params"])
        if defaults:
            accepted = _accepted_args(type(self))
            for key, value in defaults.items():
                if key in accepted and key not in kwargs and key not in {"params", "default_args"}:
                    kwargs[key] = value
        kwargs["params"] = params
        kwargs["default_args"] = defaults
        state["_init_depth"] = 1
        try:
            init(self, *args, **kwargs)
        finally:
            state["_init_depth"] = 0
        self._post_init()

    return wrapper


class BaseOperator(DependencyMixin):
    """Airflow's BaseOperator: subclass it and write `execute(self, context)`."""

    template_fields: ClassVar[Sequence[str]] = ()
    template_ext: ClassVar[Sequence[str]] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {}
    ui_color: ClassVar[str] = "#fff"
    ui_fgcolor: ClassVar[str] = "#000"
    is_mapped: ClassVar[bool] = False
    _is_task_node: ClassVar[bool] = True
    # Subclasses that branch, short-circuit or sense set these so the runtime knows.
    inherits_from_skipmixin: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _apply_defaults(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def __init__(self, *, task_id: str, dag: "DAG | None" = None, task_group: "TaskGroup | None" = None,
                 params: Any = None, default_args: dict[str, Any] | None = None, **kwargs: Any) -> None:
        from nbflow.authoring.dag import validate_key
        if not _BASE_KEYS.issuperset(kwargs):
            unknown = set(kwargs) - _BASE_KEYS
            raise DagDefinitionError(f"invalid arguments were passed to {type(self).__name__} (task_id: {task_id}): "
                                     f"{', '.join(sorted(unknown))}")
        if _plain_base_attributes(type(self)):
            self.__dict__.update(_BASE_DEFAULTS)
            self.__dict__.update(kwargs)
        else:
            for key, default in _BASE_DEFAULTS.items():
                setattr(self, key, kwargs.get(key, default))
        validate_key("task_id", task_id)
        dag = dag or ctx.current_dag()
        group = task_group or ctx.current_group(dag)
        self.task_group = group
        self._label = task_id
        self.task_id = group.child_id(task_id) if group is not None else task_id
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self.params = params if isinstance(params, ParamsDict) else ParamsDict(params or {})
        self.default_args = dict(default_args or {})
        self.trigger_rule = self._check_trigger_rule(self.trigger_rule)
        self.weight_rule = self._check_weight_rule(self.weight_rule)
        self.retries = int(self.retries or 0)
        self.retry_delay = parse_duration(self.retry_delay) or timedelta(0)
        self.max_retry_delay = parse_duration(self.max_retry_delay)
        self.execution_timeout = parse_duration(self.execution_timeout)
        self.start_date = coerce_datetime(self.start_date)
        self.end_date = coerce_datetime(self.end_date)
        if isinstance(self.email, str):
            self.email = [e.strip() for e in self.email.replace(";", ",").split(",") if e.strip()]
        self._dag: DAG | None = None
        if dag is not None:
            self.dag = dag
        if group is not None:
            group.add(self)

    def _check_trigger_rule(self, rule: Any) -> TriggerRule:
        if type(rule) is TriggerRule:
            return rule
        try:
            return TriggerRule(str(rule))
        except ValueError:
            raise DagDefinitionError(f"task {self.task_id!r}: trigger_rule {rule!r} is not one of: "
                                     f"{', '.join(sorted(TriggerRule.all_triggers()))}") from None

    def _check_weight_rule(self, rule: Any) -> WeightRule:
        if type(rule) is WeightRule:
            return rule
        try:
            return WeightRule(str(getattr(rule, "value", rule)))
        except ValueError:
            raise DagDefinitionError(f"task {self.task_id!r}: weight_rule {rule!r} is not one of: "
                                     f"{', '.join(sorted(WeightRule.all_weight_rules()))}") from None

    def _post_init(self) -> None:
        """Runs once the outermost __init__ returned: template fields must name attributes; XComArgs in
        them make their tasks upstream."""
        for name in self.template_fields:
            if not hasattr(self, name):
                raise DagDefinitionError(f"{type(self).__name__} {self.task_id!r}: template field {name!r} is not "
                                         f"an attribute; set self.{name} in __init__")
        # An upstream output passed in a templated argument (op_args=[t.output]) makes that task upstream,
        # as in Airflow; otherwise the value could be pulled before it was pushed.
        from nbflow.authoring.xcom_arg import set_upstreams_from
        set_upstreams_from(self, *(getattr(self, name) for name in self.template_fields))

    # -- identity -----------------------------------------------------------------------------
    @property
    def dag(self) -> "DAG":
        if self._dag is None:
            raise DagDefinitionError(f"task {self.task_id!r} is not assigned to a DAG")
        return self._dag

    @dag.setter
    def dag(self, dag: "DAG") -> None:
        if self._dag is not None and self._dag is not dag:
            raise DagDefinitionError(f"task {self.task_id!r} already belongs to DAG {self._dag.dag_id!r}")
        self._dag = dag
        dag.add_task(self)
        if self.start_date is None:
            self.start_date = dag.start_date
        if self.end_date is None:
            self.end_date = dag.end_date

    @property
    def has_dag(self) -> bool:
        return self._dag is not None

    @property
    def dag_id(self) -> str:
        return self._dag.dag_id if self._dag is not None else f"adhoc_{self.owner}"

    @property
    def label(self) -> str:
        return self._label

    @property
    def task_type(self) -> str:
        return type(self).__name__

    @property
    def operator_name(self) -> str:
        return getattr(self, "custom_operator_name", None) or type(self).__name__

    @property
    def log(self) -> logging.Logger:
        """Airflow's `self.log` for operator code: a child of the `nbflow.task` logger, so what it logs goes
        to the running attempt's log file."""
        given = self.__dict__.get("_log")
        if given is not None:
            return given  # type: ignore[no-any-return]
        cls = type(self)
        return logging.getLogger(f"nbflow.task.operators.{cls.__module__}.{cls.__qualname__}")

    @log.setter
    def log(self, logger: logging.Logger) -> None:  # operators that pick their own logger
        self.__dict__["_log"] = logger

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    # -- dependencies -------------------------------------------------------------------------
    @property
    def roots(self) -> list["BaseOperator"]:
        return [self]

    @property
    def leaves(self) -> list["BaseOperator"]:
        return [self]

    @property
    def upstream_list(self) -> list["BaseOperator"]:
        return [self.dag.task_dict[t] for t in sorted(self.upstream_task_ids)]

    @property
    def downstream_list(self) -> list["BaseOperator"]:
        return [self.dag.task_dict[t] for t in sorted(self.downstream_task_ids)]

    def _link(self, others: Any, *, upstream: bool, edge_modifier: Any) -> None:
        from nbflow.authoring.edges import EdgeModifier
        for item in flatten(others):
            if isinstance(item, EdgeModifier):
                item.set_downstream(self) if upstream else item.set_upstream(self)
                continue
            for other in operators_of(item, as_leaves=upstream):
                self._link_one(other, upstream=upstream, edge_modifier=edge_modifier)

    def _link_one(self, other: "BaseOperator", *, upstream: bool, edge_modifier: Any) -> None:
        if other is self:
            raise DagDefinitionError(f"task {self.task_id!r} cannot depend on itself")
        dag = self._dag or other._dag
        if dag is None:
            raise DagDefinitionError(f"tasks {self.task_id!r} and {other.task_id!r} belong to no DAG; "
                                     f"create them inside `with DAG(...)` or pass dag=")
        if self._dag is not None and other._dag is not None and self._dag is not other._dag:
            raise DagDefinitionError(f"tasks {self.task_id!r} and {other.task_id!r} are in different DAGs "
                                     f"({self._dag.dag_id!r}, {other._dag.dag_id!r})")
        for task in (self, other):
            if task._dag is None:
                task.dag = dag
        up, down = (other, self) if upstream else (self, other)
        up.downstream_task_ids.add(down.task_id)
        down.upstream_task_ids.add(up.task_id)
        if edge_modifier is not None:
            dag.set_edge_info(up.task_id, down.task_id, edge_modifier.edge_info())

    def set_upstream(self, other: Any, edge_modifier: Any = None) -> None:
        self._link(other, upstream=True, edge_modifier=edge_modifier)

    def set_downstream(self, other: Any, edge_modifier: Any = None) -> None:
        self._link(other, upstream=False, edge_modifier=edge_modifier)

    def get_direct_relative_ids(self, upstream: bool = False) -> set[str]:
        return set(self.upstream_task_ids if upstream else self.downstream_task_ids)

    def get_flat_relative_ids(self, *, upstream: bool = False) -> set[str]:
        return self.dag.partial_subset([self.task_id], include_upstream=upstream,
                                       include_downstream=not upstream) - {self.task_id}

    @property
    def output(self) -> Any:
        """This task's return value, as an XComArg to pass to other tasks."""
        from nbflow.authoring.xcom_arg import XComArg
        return XComArg(self)

    # -- running ------------------------------------------------------------------------------
    def execute(self, context: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement execute(context)")

    def xcom_push(self, context: dict[str, Any], key: str, value: Any, execution_date: Any = None) -> None:
        """Airflow 2's operator shortcut for `context["ti"].xcom_push(key, value)`."""
        context["ti"].xcom_push(key=key, value=value)

    def xcom_pull(self, context: dict[str, Any], task_ids: Any = None, dag_id: str | None = None,
                  key: str = "return_value", include_prior_dates: bool | None = None) -> Any:
        """Airflow 2's operator shortcut for `context["ti"].xcom_pull(...)`."""
        return context["ti"].xcom_pull(task_ids=task_ids, dag_id=dag_id, key=key)

    def pre_execute(self, context: dict[str, Any]) -> None:
        """Called right before execute; override for set-up."""

    def post_execute(self, context: dict[str, Any], result: Any = None) -> None:
        """Called right after execute succeeded."""

    def on_kill(self) -> None:
        """Called when the attempt is killed (timeout, clear); release external resources here."""

    def render_template_fields(self, context: dict[str, Any], jinja_env: Any = None) -> None:
        """Render every template field in place, with the task's context."""
        from nbflow.authoring.templating import render_fields
        render_fields(self, context, jinja_env)

    def render_template(self, content: Any, context: dict[str, Any], jinja_env: Any = None) -> Any:
        from nbflow.authoring.templating import render_value
        return render_value(self, "<value>", content, context, jinja_env or self.dag.get_template_env())

    def prepare_for_execution(self) -> "BaseOperator":
        """A copy to run one attempt with, so rendering never changes the parsed DAG."""
        cls = type(self)
        if _copied_by_dict(cls):  # what copy.copy does for such a class, in a fifth of the time
            clone = cls.__new__(cls)
            clone.__dict__.update(self.__dict__)
        else:
            clone = copy.copy(self)
        for name in self.template_fields:
            setattr(clone, name, copy.copy(getattr(self, name)))
        return clone

    # -- dynamic task mapping -----------------------------------------------------------------
    @classmethod
    def partial(cls, *, task_id: str, **kwargs: Any) -> Any:
        from nbflow.authoring.mapped import OperatorPartial
        return OperatorPartial(cls, task_id=task_id, kwargs=kwargs)

    def iter_mapped_dependencies(self) -> Iterable[Any]:
        return ()

    def next_retry_delay(self, try_number: int, *, logical_date: datetime | None = None) -> timedelta:
        """How long to wait before retry `try_number` (2 = first retry), as Airflow 3's `next_retry_datetime`.

        Without backoff: retry_delay, whatever max_retry_delay says. With it: whole seconds in
        [b, 2b), b = max(ceil(retry_delay * 2^(try_number - 2)), 1), the jitter a hash of DAG, task,
        logical date and failed try (so each instance retries at its own, repeatable time), at most
        a day (Airflow's max_task_retry_delay), then capped by max_retry_delay.
        """
        if not self.retry_exponential_backoff:
            return self.retry_delay
        failed_try = try_number - 1
        # The exponent is bounded so that a try number grown by many clears cannot overflow a float.
        base = max(math.ceil(self.retry_delay.total_seconds() * 2 ** min(failed_try - 1, 64)), 1)
        logical = logical_date.isoformat() if logical_date is not None else None
        seed = f"{self.dag_id}#{self.task_id}#{logical}#{failed_try}".encode()
        jitter = int(hashlib.sha1(seed, usedforsecurity=False).hexdigest(), 16) % base
        delay = timedelta(seconds=min(base + jitter, _MAX_RETRY_DELAY_SECONDS))
        if self.max_retry_delay:
            delay = min(delay, self.max_retry_delay)
        return delay


# Operators without an __init__ of their own (EmptyOperator) still take defaults from default_args.
BaseOperator.__init__ = _apply_defaults(BaseOperator.__init__)  # type: ignore[method-assign]
