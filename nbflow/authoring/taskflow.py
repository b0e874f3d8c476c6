"""TaskFlow: `@task` turns a function into a task; calling it wires XComArgs between tasks.

The decorator kinds (`@task.bash`, `@task.branch`, ...) live with their operators and register in
`task_decorators`; `@task` itself is `task_decorators["python"]`.
"""
from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from nbflow.authoring import context as ctx
from nbflow.authoring.baseoperator import BaseOperator
from nbflow.authoring.dag import validate_key
from nbflow.authoring.mapped import MappedOperator, OperatorPartial
from nbflow.authoring.xcom_arg import XComArg, set_upstreams_from
from nbflow.exceptions import DagDefinitionError
from nbflow.utils.registry import Registry

task_decorators: Registry[Callable[..., Any]] = Registry("task decorator", entry_points="nbflow.task_decorators")


class DecoratedOperator(BaseOperator):
    """Base of operators made by a decorator: they hold the function and the call's arguments."""

    template_fields = ("op_args", "op_kwargs")
    custom_operator_name = "@task"
    # Arguments the operator class after this one in the MRO also takes (PythonOperator does).
    kwargs_to_upstream: tuple[str, ...] = ()

    def __init__(self, *, python_callable: Callable[..., Any], task_id: str, op_args: Any = None,
                 op_kwargs: Mapping[str, Any] | None = None, multiple_outputs: bool = False, **kwargs: Any) -> None:
        given = {"python_callable": python_callable, "op_args": op_args, "op_kwargs": op_kwargs}
        upstream = {k: v for k, v in given.items() if k in self.kwargs_to_upstream}
        super().__init__(task_id=task_id, multiple_outputs=multiple_outputs, **upstream, **kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        _check_signature(python_callable, self.op_args, self.op_kwargs, task_id)
        set_upstreams_from(self, self.op_args, self.op_kwargs)


def _check_signature(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], task_id: str) -> None:
    """Fail at parse time when the call cannot bind (context keys may be left out)."""
    from nbflow.authoring.context_keys import CONTEXT_KEYS
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    params = [p for name, p in sig.parameters.items() if name not in CONTEXT_KEYS or name in kwargs]
    try:
        sig.replace(parameters=params).bind_partial(*args, **kwargs)
    except TypeError as err:
        raise DagDefinitionError(f"task {task_id!r}: cannot call {fn.__name__}() with the given arguments: "
                                 f"{err}") from None


def _infer_multiple_outputs(fn: Callable[..., Any]) -> bool:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable forward references
        return False
    ret = hints.get("return")
    origin = typing.get_origin(ret) or ret
    return isinstance(origin, type) and (issubclass(origin, Mapping) or typing.is_typeddict(ret))


def unique_task_id(task_id: str, dag: Any, group: Any) -> str:
    """`fn`, then `fn__1`, `fn__2`, ... when a function is called more than once in a DAG."""
    if dag is None:
        return task_id
    full = group.child_id(task_id) if group is not None else task_id
    if full not in dag.task_dict:
        return task_id
    base = re.sub(r"__\d+$", "", task_id)  # only a numeric suffix: `load__raw` is a name, not a repeat
    n = 1
    while (group.child_id(f"{base}__{n}") if group is not None else f"{base}__{n}") in dag.task_dict:
        n += 1
    return f"{base}__{n}"


class TaskDecorator:
    """A decorated function: call it to add a task; `.override`, `.partial`, `.expand` as in Airflow."""

    def __init__(self, function: Callable[..., Any], operator_class: type[DecoratedOperator],
                 kwargs: dict[str, Any]) -> None:
        self.function = function
        self.operator_class = operator_class
        self.kwargs = dict(kwargs)
        functools.update_wrapper(self, function)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<@task {self.function.__name__}>"

    def _operator_kwargs(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        kwargs = {**self.kwargs, **(extra or {})}
        if kwargs.get("multiple_outputs") is None:
            kwargs["multiple_outputs"] = _infer_multiple_outputs(self.function)
        dag = kwargs.get("dag") or ctx.current_dag()
        group = kwargs.get("task_group") or ctx.current_group(dag)
        task_id = validate_key("task_id", kwargs.pop("task_id", None) or self.function.__name__)
        kwargs["task_id"] = unique_task_id(task_id, dag, group)
        return kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        op = self.operator_class(python_callable=self.function, op_args=args, op_kwargs=kwargs,
                                 **self._operator_kwargs())
        return XComArg(op)

    def override(self, **kwargs: Any) -> "TaskDecorator":
        return TaskDecorator(self.function, self.operator_class, {**self.kwargs, **kwargs})

    def partial(self, **partial_kwargs: Any) -> OperatorPartial:
        op_kwargs = self._operator_kwargs()
        task_id = op_kwargs.pop("task_id")
        op_kwargs["python_callable"] = self.function
        op_kwargs["op_kwargs"] = partial_kwargs
        return _DecoratedPartial(self.operator_class, task_id=task_id, kwargs=op_kwargs, mapped_into="op_kwargs")

    def expand(self, **mapped: Any) -> XComArg:
        return self.partial().expand(**mapped)

    def expand_kwargs(self, kwargs_list: Any) -> XComArg:
        return self.partial().expand_kwargs(kwargs_list)


class _DecoratedPartial(OperatorPartial):
    """`fn.partial(...)` of a `@task`: like Airflow, `.expand()` gives an XComArg, so that passing the
    mapped result to another task (`report(fn.partial(x=1).expand(y=ys))`) makes it upstream."""

    def expand(self, **mapped: Any) -> XComArg:  # type: ignore[override]
        return XComArg(super().expand(**mapped))

    def expand_kwargs(self, kwargs_list: Any) -> XComArg:  # type: ignore[override]
        return XComArg(super().expand_kwargs(kwargs_list))


def task_decorator_factory(python_callable: Callable[..., Any] | None = None, *,
                           decorated_operator_class: type[DecoratedOperator],
                           multiple_outputs: bool | None = None, **kwargs: Any) -> Any:
    """Builds `@kind` and `@kind(...)` decorators for a DecoratedOperator subclass."""
    def decorate(fn: Callable[..., Any]) -> TaskDecorator:
        if not callable(fn):
            raise DagDefinitionError(f"@task decorates functions, not {type(fn).__name__}")
        return TaskDecorator(fn, decorated_operator_class, {"multiple_outputs": multiple_outputs, **kwargs})

    return decorate(python_callable) if python_callable is not None else decorate


class TaskDecoratorCollection:
    """`@task` (the Python kind) and `@task.<kind>` for every registered kind."""

    def __call__(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return task_decorators.get("python")(python_callable, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return task_decorators.get(name, where=f"@task.{name}")


task = TaskDecoratorCollection()

__all__ = ["DecoratedOperator", "MappedOperator", "TaskDecorator", "task", "task_decorator_factory",
           "task_decorators"]
