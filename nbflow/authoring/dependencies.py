"""`>>` and `<<` for tasks, lists, task groups, XComArgs and edge labels; and the walk along those edges."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class DependencyMixin:
    """Anything with roots and leaves that can be set up- or downstream of another."""

    @property
    def roots(self) -> list[Any]:
        raise NotImplementedError

    @property
    def leaves(self) -> list[Any]:
        raise NotImplementedError

    def set_upstream(self, other: Any, edge_modifier: Any = None) -> None:
        raise NotImplementedError

    def set_downstream(self, other: Any, edge_modifier: Any = None) -> None:
        raise NotImplementedError

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> Any:  # [a, b] >> self
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> Any:  # [a, b] << self
        self.set_downstream(other)
        return self


def flatten(items: Any) -> list[Any]:
    """A node, or a nested list/tuple/set of nodes, as a flat list."""
    if isinstance(items, (list, tuple, set, frozenset)):
        flat: list[Any] = []
        for item in items:
            flat.extend(flatten(item))
        return flat
    return [items]


def operators_of(items: Any, *, as_leaves: bool) -> list[Any]:
    """The operators a dependency reaches: a group's leaves (or roots), an XComArg's operator."""
    found: list[Any] = []
    for item in flatten(items):
        if hasattr(item, "_is_task_node"):
            found.append(item)
        else:
            found.extend(item.leaves if as_leaves else item.roots)
    return found


def chain(*elements: Any) -> None:
    """Airflow's chain(): a >> b >> c, where equal-length lists pair up element by element."""
    for up, down in zip(elements, elements[1:]):
        up_is_list = isinstance(up, Sequence) and not isinstance(up, str)
        down_is_list = isinstance(down, Sequence) and not isinstance(down, str)
        if up_is_list and down_is_list:
            if len(up) != len(down):
                from nbflow.exceptions import DagDefinitionError
                raise DagDefinitionError(f"chain() cannot pair lists of different lengths "
                                         f"({len(up)} and {len(down)}); give lists of equal length")
            for u, d in zip(up, down):
                u >> d
        elif up_is_list:
            for u in up:
                u >> down
        elif down_is_list:
            up >> list(down)
        else:
            up >> down


def cross_downstream(from_tasks: Iterable[Any], to_tasks: Any) -> None:
    """Every task in from_tasks upstream of every task in to_tasks."""
    for task in from_tasks:
        task >> to_tasks

def reachable_task_ids(task_dict: "Mapping[str, Any]", task_ids: "Iterable[str]", *, downstream: bool,
                       upstream: bool) -> set[str]:
    """`task_ids` plus every task up- and/or downstream of them: the walk behind partial_subset, shared by
    DAGs and serialized DAGs (anything whose tasks have upstream_task_ids and downstream_task_ids)."""
    selected = set(task_ids)
    frontier = list(selected)
    while frontier:
        task = task_dict[frontier.pop()]
        nxt = (task.downstream_task_ids if downstream else set()) | (task.upstream_task_ids if upstream else set())
        for tid in nxt - selected:
            selected.add(tid)
            frontier.append(tid)
    return selected
