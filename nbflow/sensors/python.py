"""PythonSensor: poke by calling a function; `@task.sensor` turns a function into one."""
from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from nbflow.authoring.taskflow import DecoratedOperator, task_decorator_factory, task_decorators
from nbflow.operators.python import determine_kwargs
from nbflow.sensors.base import BaseSensorOperator, PokeReturnValue


class PythonSensor(BaseSensorOperator):
    """Done when `python_callable(*op_args, **op_kwargs)` returns a true value or a done PokeReturnValue."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(self, *, python_callable: Callable[..., Any], op_args: Collection[Any] | None = None,
                 op_kwargs: Mapping[str, Any] | None = None, templates_dict: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        extra = determine_kwargs(self.python_callable, self.op_args, context,
                                 {"templates_dict": self.templates_dict})
        result = self.python_callable(*self.op_args, **{**extra, **self.op_kwargs})
        return result if isinstance(result, PokeReturnValue) else PokeReturnValue(bool(result))


class _SensorDecoratedOperator(DecoratedOperator, PythonSensor):
    """`@task.sensor`: the function is the poke; it returns a bool or a PokeReturnValue."""

    custom_operator_name = "@task.sensor"
    kwargs_to_upstream = ("python_callable", "op_args", "op_kwargs")
    template_fields = ("op_args", "op_kwargs")


def sensor_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """`@task.sensor(poke_interval=..., timeout=..., mode=...)`."""
    return task_decorator_factory(python_callable, decorated_operator_class=_SensorDecoratedOperator, **kwargs)


task_decorators.add("sensor", sensor_task)

__all__ = ["PythonSensor", "PokeReturnValue", "sensor_task"]
