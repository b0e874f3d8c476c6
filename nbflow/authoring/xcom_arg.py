"""XComArg: a reference to another task's output, resolved when the consuming task runs."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbflow.authoring.dependencies import DependencyMixin

if TYPE_CHECKING:
    from nbflow.authoring.baseoperator import BaseOperator
    from nbflow.authoring.dag import DAG

XCOM_RETURN_KEY = "return_value"


class XComArg(DependencyMixin):
    """`task.output` or what calling a `@task` returns; `>>` acts on its task, `["k"]` picks a key."""

    _is_xcom_arg = True

    def __init__(self, operator: "BaseOperator", key: str = XCOM_RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def __str__(self) -> str:
        """A template that pulls this value, as in Airflow: f"echo {task.output}" in a templated field."""
        return (f"{{{{ task_instance.xcom_pull(task_ids='{self.operator.task_id}', dag_id='{self.operator.dag_id}', "
                f"key='{self.key}') }}}}")

    def __getitem__(self, key: str) -> "XComArg":
        return XComArg(self.operator, key)

    def __iter__(self) -> Any:
        raise TypeError(f"XComArg of task {self.operator.task_id!r} is not iterable at parse time; "
                        f"use multiple_outputs=True and index it, or .expand() over it")

    @property
    def roots(self) -> list[Any]:
        return [self.operator]

    @property
    def leaves(self) -> list[Any]:
        return [self.operator]

    def set_upstream(self, other: Any, edge_modifier: Any = None) -> None:
        self.operator.set_upstream(other, edge_modifier)

    def set_downstream(self, other: Any, edge_modifier: Any = None) -> None:
        self.operator.set_downstream(other, edge_modifier)

    def iter_references(self) -> list[tuple["BaseOperator", str]]:
        return [(self.operator, self.key)]

    def resolve(self, context: dict[str, Any]) -> Any:
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)


class DagParamArg:
    """A `@dag` function parameter: resolves to the run's `params[name]`."""

    _is_xcom_arg = True

    def __init__(self, dag: "DAG", name: str) -> None:
        self.dag, self.name = dag, name

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"

    def iter_references(self) -> list[Any]:
        return []

    def resolve(self, context: dict[str, Any]) -> Any:
        return context["params"][self.name]


def find_references(value: Any) -> list[Any]:
    """Every XComArg inside a value (lists, tuples, sets, dicts, nested)."""
    if isinstance(value, XComArg):
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [ref for v in value for ref in find_references(v)]
    if isinstance(value, dict):
        return [ref for v in value.values() for ref in find_references(v)]
    return []


def set_upstreams_from(task: "BaseOperator", *values: Any) -> None:
    """Make `task` downstream of every task whose output it receives."""
    from nbflow.authoring import context
    if context.is_detached():  # a mapped task's per-index copy: the mapped task holds the dependencies
        return
    for value in values:
        if value is None or (type(value) in (list, dict, tuple) and not value):
            continue  # the common case (no op_args, no templates_dict): nothing to look through
        for ref in find_references(value):
            ref.operator.set_downstream(task)
