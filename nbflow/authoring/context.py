"""Which DAG and task group a task being built belongs to (the `with` blocks around it), and the context
of the task executing now."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.authoring.taskgroup import TaskGroup


class _Stack(threading.local):
    def __init__(self) -> None:
        self.dags: list[DAG] = []
        self.groups: list[TaskGroup] = []
        self.detached = 0
        self.task_contexts: list[dict[str, Any]] = []


_stack = _Stack()
# DAGs entered as context managers or built by @dag, kept so that a DagBag finds DAGs that no
# module global holds (Airflow's auto_register). The DagBag drains it under its own lock.
autoregistered: list[Any] = []


def push_dag(dag: "DAG") -> None:
    _stack.dags.append(dag)


def pop_dag() -> "DAG | None":
    return _stack.dags.pop() if _stack.dags else None


def current_dag() -> "DAG | None":
    if _stack.detached:
        return None
    return _stack.dags[-1] if _stack.dags else None


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Build operators that join no DAG and link to no task: a mapped task's copy for one map index,
    whose DAG and dependencies are the mapped task's (even when a `with DAG` block is open)."""
    _stack.detached += 1
    try:
        yield
    finally:
        _stack.detached -= 1


def is_detached() -> bool:
    return _stack.detached > 0


def push_group(group: "TaskGroup") -> None:
    _stack.groups.append(group)


def pop_group() -> "TaskGroup | None":
    return _stack.groups.pop() if _stack.groups else None


def current_group(dag: "DAG | None") -> "TaskGroup | None":
    """The innermost open task group of `dag`, else its root group."""
    for group in reversed(_stack.groups):
        if group.dag is dag:
            return group
    return dag.task_group if dag is not None else None


class _RunningTask:
    """A plain context manager: one runs per attempt, and a generator-based one costs several times more."""

    __slots__ = ("_context",)

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def __enter__(self) -> None:
        _stack.task_contexts.append(self._context)

    def __exit__(self, *exc_info: object) -> None:
        _stack.task_contexts.pop()


def running_task(context: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
    """Make `context` the current task context while a task executes (for get_current_context())."""
    return _RunningTask(context)


def current_task_context() -> dict[str, Any] | None:
    """The context of the task executing in this thread, if any."""
    return _stack.task_contexts[-1] if _stack.task_contexts else None
