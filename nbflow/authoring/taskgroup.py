"""TaskGroup: a named set of tasks, prefixed ids, nested, wired up as one node."""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from nbflow.authoring import context as ctx
from nbflow.authoring.dependencies import DependencyMixin, flatten, operators_of
from nbflow.exceptions import DagDefinitionError, DuplicateTaskIdFound

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG

_KEY = re.compile(r"^[\w.-]+$")


class TaskGroup(DependencyMixin):
    """Airflow's TaskGroup. `>>` on a group links its leaves (or roots) to the other side."""

    def __init__(self, group_id: str | None, *, prefix_group_id: bool = True, parent_group: "TaskGroup | None" = None,
                 dag: "DAG | None" = None, default_args: dict[str, Any] | None = None, tooltip: str = "",
                 ui_color: str = "CornflowerBlue", ui_fgcolor: str = "#000", add_suffix_on_collision: bool = False,
                 group_display_name: str = "") -> None:
        self.children: dict[str, Any] = {}
        self.prefix_group_id = prefix_group_id
        self.default_args = dict(default_args or {})
        self.tooltip, self.ui_color, self.ui_fgcolor = tooltip, ui_color, ui_fgcolor
        self.used_group_ids: set[str | None]
        if group_id is None:  # the root group of a DAG
            self._group_id: str | None = None
            self.dag = dag
            self.parent_group = None
            self.used_group_ids = set()
            return
        if not isinstance(group_id, str) or not _KEY.match(group_id):
            raise DagDefinitionError(f"task group id {group_id!r} may only contain letters, digits, '_', '-' and '.'")
        dag = dag or ctx.current_dag()
        if dag is None:
            raise DagDefinitionError(f"TaskGroup {group_id!r} is not inside a DAG; create it within `with DAG(...)`")
        self.dag = dag
        self.parent_group = parent_group or ctx.current_group(dag)
        self.default_args = {**self.parent_group.default_args, **self.default_args}
        self._group_id = group_id
        if add_suffix_on_collision:  # Airflow's numbering: g, g__1, g__2, ...
            base, n = group_id, 0
            while self.group_id in self.parent_group.root.used_group_ids:
                n += 1
                self._group_id = f"{base}__{n}"
        if self.group_id in self.parent_group.root.used_group_ids:
            raise DuplicateTaskIdFound(f"DAG {dag.dag_id!r}: task group id {self.group_id!r} is used twice")
        self.parent_group.root.used_group_ids.add(self.group_id)
        self.parent_group.add(self)
        self.upstream_group_ids: set[str] = set()
        self.downstream_group_ids: set[str] = set()
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()

    @property
    def root(self) -> "TaskGroup":
        group = self
        while group.parent_group is not None:
            group = group.parent_group
        return group

    @property
    def is_root(self) -> bool:
        return self._group_id is None

    @property
    def group_id(self) -> str | None:
        if self._group_id and self.parent_group is not None and self.parent_group.prefix_group_id \
                and self.parent_group.group_id:
            return f"{self.parent_group.group_id}.{self._group_id}"
        return self._group_id

    @property
    def label(self) -> str | None:
        return self._group_id

    def child_id(self, label: str) -> str:
        """The full id of a child named `label` (prefixed with this group's id when asked)."""
        if self.prefix_group_id and self.group_id:
            return f"{self.group_id}.{label}"
        return label

    def add(self, node: Any) -> None:
        key = node.group_id if isinstance(node, TaskGroup) else node.task_id
        if key in self.children:
            raise DuplicateTaskIdFound(f"DAG {self.dag.dag_id if self.dag else '?'}: {key!r} is defined twice "
                                       f"in task group {self.group_id or '(root)'}")
        self.children[key] = node

    def iter_tasks(self) -> Iterator[Any]:
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child.iter_tasks()
            else:
                yield child

    def iter_groups(self) -> Iterator["TaskGroup"]:
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield child
                yield from child.iter_groups()

    @property
    def roots(self) -> list[Any]:
        tasks = list(self.iter_tasks())
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if not (t.upstream_task_ids & ids)]

    @property
    def leaves(self) -> list[Any]:
        tasks = list(self.iter_tasks())
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if not (t.downstream_task_ids & ids)]

    def set_upstream(self, other: Any, edge_modifier: Any = None) -> None:
        from nbflow.authoring.edges import EdgeModifier
        for item in flatten(other):
            if isinstance(item, EdgeModifier):  # group << Label(...): the label links once it knows both sides
                item.set_downstream(self)
                continue
            if isinstance(item, TaskGroup):
                self.upstream_group_ids.add(item.group_id or "")
            for up in operators_of(item, as_leaves=True):
                for root in self.roots:
                    root.set_upstream(up, edge_modifier)

    def set_downstream(self, other: Any, edge_modifier: Any = None) -> None:
        from nbflow.authoring.edges import EdgeModifier
        for item in flatten(other):
            if isinstance(item, EdgeModifier):  # group >> Label(...) >> task
                item.set_upstream(self)
                continue
            if isinstance(item, TaskGroup):
                self.downstream_group_ids.add(item.group_id or "")
            for down in operators_of(item, as_leaves=False):
                for leaf in self.leaves:
                    leaf.set_downstream(down, edge_modifier)

    def __enter__(self) -> "TaskGroup":
        ctx.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        ctx.pop_group()

    def __repr__(self) -> str:
        return f"<TaskGroup {self.group_id or '(root)'}>"


def task_group(python_callable: Callable[..., Any] | None = None, **group_kwargs: Any) -> Any:
    """`@task_group`: calling the function builds its tasks inside a new TaskGroup and returns the group
    (or what the function returned, when that is a task or XComArg, so it can be wired)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def build(*args: Any, **kwargs: Any) -> Any:
            kw = dict(group_kwargs)
            group_id = kw.pop("group_id", None) or fn.__name__
            kw.setdefault("tooltip", (fn.__doc__ or "").strip())
            kw.setdefault("add_suffix_on_collision", True)
            with TaskGroup(group_id, **kw) as group:
                result = fn(*args, **kwargs)
            if result is None or isinstance(result, TaskGroup):
                return group
            return result if hasattr(result, "set_downstream") else group

        def expand(**mapped: Any) -> Any:
            raise DagDefinitionError(f"@task_group {fn.__name__!r}: mapping over task groups is not supported yet; "
                                     f"map the tasks inside the group instead")

        def partial(**kwargs: Any) -> Any:
            return functools.partial(build, **kwargs)

        build.expand = expand  # type: ignore[attr-defined]
        build.partial = partial  # type: ignore[attr-defined]
        return build

    return decorate(python_callable) if python_callable is not None else decorate
