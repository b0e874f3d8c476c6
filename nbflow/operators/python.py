"""PythonOperator and its kin: call a Python function with arguments and the task context."""
from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.authoring.taskflow import DecoratedOperator, task_decorator_factory, task_decorators
from nbflow.exceptions import DagDefinitionError, NbflowException
from nbflow.operators.skipping import skip_all_except, skip_downstream


@dataclass(frozen=True, slots=True)
class _CallShape:
    """What determine_kwargs needs of a callable's signature, worked out once per function."""

    takes_all: bool  # has **kwargs: gets every context entry
    positional: tuple[str, ...]  # names that op_args fill first, in order
    named: tuple[str, ...]  # every other parameter name a context entry may fill (not *args)


def _shape_of(fn: Callable[..., Any]) -> _CallShape:
    params = list(inspect.signature(fn).parameters.values())
    positional = tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    named = tuple(p.name for p in params if p.kind is not p.VAR_POSITIONAL)
    return _CallShape(any(p.kind is p.VAR_KEYWORD for p in params), positional, named)


# inspect.signature costs ~20 µs, paid by every attempt; a plain function's shape only changes with its code.
_shapes: dict[Any, tuple[Any, _CallShape]] = {}


def _call_shape(fn: Callable[..., Any]) -> _CallShape:
    if type(fn) is not types.FunctionType:  # methods, partials, callable objects: no cheap staleness check
        return _shape_of(fn)
    cached = _shapes.get(fn)
    if cached is not None and cached[0] is fn.__code__ and "__wrapped__" not in fn.__dict__ \
            and "__signature__" not in fn.__dict__:
        return cached[1]
    shape = _shape_of(fn)
    if len(_shapes) > 65536:
        _shapes.clear()
    _shapes[fn] = (fn.__code__, shape)
    return shape


def warm_up_callable(fn: Any) -> None:
    """Learn a task's callable's signature now: a process forked afterwards finds it cached."""
    if callable(fn):
        try:
            _call_shape(fn)
        except (TypeError, ValueError):  # no signature (some builtins): each attempt finds out itself
            pass


def determine_kwargs(fn: Callable[..., Any], args: Collection[Any], context: Mapping[str, Any],
                     overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The context entries `fn` asks for, by parameter name, or all of them when it takes **kwargs.

    `overrides` are entries read as if `dict(context, **overrides)` was passed, without copying the context:
    a copy would compute the entries a task context defers (see TaskContext)."""
    shape = _call_shape(fn)
    extra = overrides or {}
    if shape.takes_all:
        return dict(context, **extra)
    taken = shape.positional[:len(args)]
    return {name: extra[name] if name in extra else context[name] for name in shape.named
            if (name in extra or name in context) and name not in taken}


def get_current_context() -> dict[str, Any]:
    """Airflow's get_current_context(): the context of the task running now, for code that is not
    handed it (a helper called from a @task function)."""
    from nbflow.authoring.context import current_task_context
    context = current_task_context()
    if context is None:
        raise NbflowException("get_current_context() was called outside a running task; call it from code "
                              "that a task's execute(), python_callable or @task function runs")
    return context


class PythonOperator(BaseOperator):
    """Calls `python_callable(*op_args, **op_kwargs)`, adding context entries it names as parameters."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")
    template_fields_renderers = {"templates_dict": "json", "op_args": "py", "op_kwargs": "py"}
    ui_color = "#ffefeb"

    def __init__(self, *, python_callable: Callable[..., Any], op_args: Collection[Any] | None = None,
                 op_kwargs: Mapping[str, Any] | None = None, templates_dict: dict[str, Any] | None = None,
                 templates_exts: list[str] | None = None, show_return_value_in_logs: bool = True,
                 provide_context: bool | None = None, **kwargs: Any) -> None:
        # provide_context is Airflow 1's switch, still accepted (and ignored) by Airflow 2: the context
        # is always offered. Accepted so that Airflow 2 files that still pass it load.
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise DagDefinitionError(f"task {self.task_id!r}: python_callable must be callable, got "
                                     f"{type(python_callable).__name__}")
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict
        if templates_exts:
            self.template_ext = tuple(templates_exts)
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: dict[str, Any]) -> Any:
        extra = determine_kwargs(self.python_callable, self.op_args, context,
                                 {"templates_dict": self.templates_dict})
        kwargs = {**extra, **self.op_kwargs}
        return_value = self.execute_callable(kwargs)
        if self.show_return_value_in_logs and return_value is not None:
            text = repr(return_value)
            print(f"Done. Returned value was: {text[:1000]}{'...' if len(text) > 1000 else ''}")
        return return_value

    def execute_callable(self, kwargs: dict[str, Any]) -> Any:
        return self.python_callable(*self.op_args, **kwargs)


class BranchPythonOperator(PythonOperator):
    """The callable returns the task id(s) or task group id(s) to follow; other direct downstream tasks skip."""

    inherits_from_skipmixin = True

    def execute(self, context: dict[str, Any]) -> Any:
        branches = super().execute(context)
        skip_all_except(self, context["ti"], branches)
        return branches


class ShortCircuitOperator(PythonOperator):
    """A falsy return value skips downstream tasks: all of them, or only direct ones whose rules then decide."""

    inherits_from_skipmixin = True

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: dict[str, Any]) -> Any:
        condition = super().execute(context)
        if condition:
            print("Condition result is truthy; downstream tasks proceed")
            return condition
        print(f"Condition result is falsy; skipping "
              f"{'all downstream tasks' if self.ignore_downstream_trigger_rules else 'direct downstream tasks'}")
        skip_downstream(self, context["ti"], all_downstream=self.ignore_downstream_trigger_rules)
        return condition


# --- TaskFlow kinds ------------------------------------------------------------------------------

class _PythonDecoratedOperator(DecoratedOperator, PythonOperator):
    custom_operator_name = "@task"
    kwargs_to_upstream = ("python_callable", "op_args", "op_kwargs")


class _BranchPythonDecoratedOperator(DecoratedOperator, BranchPythonOperator):
    custom_operator_name = "@task.branch"
    kwargs_to_upstream = ("python_callable", "op_args", "op_kwargs")


class _ShortCircuitDecoratedOperator(DecoratedOperator, ShortCircuitOperator):
    custom_operator_name = "@task.short_circuit"
    kwargs_to_upstream = ("python_callable", "op_args", "op_kwargs")


def python_task(python_callable: Callable[..., Any] | None = None, multiple_outputs: bool | None = None,
                **kwargs: Any) -> Any:
    """`@task` / `@task.python`."""
    return task_decorator_factory(python_callable, decorated_operator_class=_PythonDecoratedOperator,
                                  multiple_outputs=multiple_outputs, **kwargs)


def branch_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """`@task.branch`: the function returns the branch(es) to follow."""
    return task_decorator_factory(python_callable, decorated_operator_class=_BranchPythonDecoratedOperator,
                                  **kwargs)


def short_circuit_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """`@task.short_circuit`: a falsy return skips what follows."""
    return task_decorator_factory(python_callable, decorated_operator_class=_ShortCircuitDecoratedOperator,
                                  **kwargs)


task_decorators.add("python", python_task)
task_decorators.add("branch", branch_task)
task_decorators.add("short_circuit", short_circuit_task)

__all__ = ["BranchPythonOperator", "PythonOperator", "ShortCircuitOperator", "determine_kwargs",
           "get_current_context", "python_task", "branch_task", "short_circuit_task"]

# --- running the function in another interpreter -------------------------------------------------
# Imported last: python_virtualenv subclasses PythonOperator, and importing it registers @task.virtualenv and
# @task.external_python. Its names are looked up when used (PEP 562), because when python_virtualenv is imported
# first it is still half-built while this module runs.
import nbflow.operators.python_virtualenv as _python_virtualenv  # noqa: E402

_PYTHON_VIRTUALENV_NAMES = ("PythonVirtualenvOperator", "ExternalPythonOperator", "virtualenv_task",
                            "external_python_task", "is_venv_installed")
__all__ += _PYTHON_VIRTUALENV_NAMES


def __getattr__(name: str) -> Any:
    if name in _PYTHON_VIRTUALENV_NAMES:
        return getattr(_python_virtualenv, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
