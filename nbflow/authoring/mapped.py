"""Dynamic task mapping: `Op.partial(...).expand(x=[...])` runs one task instance per element."""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbflow.authoring import context as ctx
from nbflow.authoring.baseoperator import _BASE_DEFAULTS, BaseOperator, _accepted_args
from nbflow.authoring.xcom_arg import XComArg, set_upstreams_from
from nbflow.exceptions import DagDefinitionError, NbflowException

if TYPE_CHECKING:
    pass


class OperatorPartial:
    """What `Op.partial(...)` returns; `.expand()` or `.expand_kwargs()` makes the mapped task."""

    def __init__(self, operator_class: type[BaseOperator], *, task_id: str, kwargs: dict[str, Any],
                 mapped_into: str | None = None) -> None:
        self.operator_class, self.task_id, self.kwargs = operator_class, task_id, dict(kwargs)
        self.mapped_into = mapped_into

    def expand(self, **mapped: Any) -> "MappedOperator":
        if not mapped:
            raise DagDefinitionError(f"task {self.task_id!r}: expand() needs at least one keyword argument")
        accepted = _accepted_args(self.operator_class)
        for name, value in mapped.items():
            if self.mapped_into is None and name not in accepted:
                raise DagDefinitionError(f"task {self.task_id!r}: {self.operator_class.__name__} has no argument "
                                         f"{name!r} to expand over")
            if not isinstance(value, (list, tuple, dict, XComArg)):
                raise DagDefinitionError(f"task {self.task_id!r}: expand({name}=...) needs a list, dict or an "
                                         f"upstream task's output, got {type(value).__name__}")
            if name in self.kwargs or (self.mapped_into and name in self.kwargs.get(self.mapped_into, {})):
                raise DagDefinitionError(f"task {self.task_id!r}: argument {name!r} is both partial and expanded")
        self._check_arguments(mapped)
        return MappedOperator(self, mapped=mapped, mapped_kwargs_list=None)

    def expand_kwargs(self, kwargs_list: Any) -> "MappedOperator":
        if not isinstance(kwargs_list, (list, tuple, XComArg)):
            raise DagDefinitionError(f"task {self.task_id!r}: expand_kwargs() needs a list of dicts or an upstream "
                                     f"task's output, got {type(kwargs_list).__name__}")
        if isinstance(kwargs_list, (list, tuple)):
            for element in kwargs_list:
                if isinstance(element, Mapping):
                    self._check_arguments(element)
        else:
            self._check_arguments({})
        return MappedOperator(self, mapped=None, mapped_kwargs_list=kwargs_list)

    def _check_arguments(self, expanded: Mapping[str, Any]) -> None:
        """Fail at parse time, as Airflow does, when the operator (or the TaskFlow function) cannot take the
        partial and expanded arguments; otherwise every mapped instance would fail at run time."""
        if self.mapped_into is None:
            accepted = _accepted_args(self.operator_class)
            unknown = sorted((set(self.kwargs) | set(expanded)) - accepted)
            if unknown:
                raise DagDefinitionError(f"task {self.task_id!r}: {self.operator_class.__name__} takes no argument(s) "
                                         f"{', '.join(map(repr, unknown))}")
            return
        fn = self.kwargs.get("python_callable")
        if fn is not None:
            from nbflow.authoring.taskflow import _check_signature  # taskflow imports this module
            given = {**(self.kwargs.get(self.mapped_into) or {}), **dict.fromkeys(expanded)}
            _check_signature(fn, list(self.kwargs.get("op_args") or []), given, self.task_id)


class MappedOperator(BaseOperator):
    """A task that becomes N task instances at run time, one per element of its expanded input."""

    is_mapped = True

    def __init__(self, partial: OperatorPartial, *, mapped: dict[str, Any] | None, mapped_kwargs_list: Any,
                 **defaults: Any) -> None:
        # `defaults` are the DAG's default_args the base class filled in; partial() arguments win.
        base_kwargs = {k: v for k, v in {**defaults, **partial.kwargs}.items()
                       if k in _BASE_DEFAULTS or k in {"dag", "task_group", "params", "default_args"}}
        super().__init__(task_id=partial.task_id, **base_kwargs)
        self.partial_op = partial
        self.operator_class = partial.operator_class
        self.mapped = mapped
        self.mapped_kwargs_list = mapped_kwargs_list
        self.template_fields = tuple(getattr(partial.operator_class, "template_fields", ()))
        self.ui_color = getattr(partial.operator_class, "ui_color", "#fff")
        set_upstreams_from(self, partial.kwargs, mapped or {}, mapped_kwargs_list)

    def __repr__(self) -> str:
        return f"<Mapped({self.operator_class.__name__}): {self.task_id}>"

    @property
    def task_type(self) -> str:
        return self.operator_class.__name__

    @property
    def operator_name(self) -> str:
        return getattr(self.operator_class, "custom_operator_name", None) or self.operator_class.__name__

    def _post_init(self) -> None:  # template fields live on the unmapped operator
        return None

    def expansion(self, context: dict[str, Any]) -> list[dict[str, Any]]:
        """The keyword arguments of each mapped instance, in map_index order."""
        if self.mapped_kwargs_list is not None:
            items = self._resolve(self.mapped_kwargs_list, context, "expand_kwargs")
            if not isinstance(items, Sequence) or not all(isinstance(i, Mapping) for i in items):
                raise NbflowException(f"task {self.task_id!r}: expand_kwargs() needs a list of dicts, got "
                                      f"{type(items).__name__}")
            return [dict(i) for i in items]
        assert self.mapped is not None
        names, columns = [], []
        for name, value in self.mapped.items():
            resolved = self._resolve(value, context, name)
            if isinstance(resolved, Mapping):
                resolved = list(resolved.items())
            if resolved is None or not isinstance(resolved, (list, tuple, Sequence)) or isinstance(resolved, str):
                raise NbflowException(f"task {self.task_id!r}: expand({name}=...) resolved to "
                                      f"{type(resolved).__name__}, not a list or dict")
            names.append(name)
            columns.append(list(resolved))
        return [dict(zip(names, combo)) for combo in itertools.product(*columns)]

    def _resolve(self, value: Any, context: dict[str, Any], name: str) -> Any:
        if isinstance(value, XComArg):
            return value.resolve(context)
        return value

    def unmap(self, kwargs: dict[str, Any]) -> BaseOperator:
        """A plain operator for one map index, sharing this task's id, DAG and dependencies."""
        partial = self.partial_op
        all_kwargs = {k: v for k, v in partial.kwargs.items() if k not in {"dag", "task_group"}}
        if partial.mapped_into:
            all_kwargs[partial.mapped_into] = {**all_kwargs.get(partial.mapped_into, {}), **kwargs}
        else:
            all_kwargs.update(kwargs)
        all_kwargs.setdefault("default_args", self.default_args)
        all_kwargs["params"] = self.params
        with ctx.detached():  # else XComArgs in its arguments would add it to the DAG a second time
            op = self.operator_class(task_id=self.label, **all_kwargs)
        op.task_id = self.task_id
        op._dag = self._dag
        op.task_group = self.task_group
        op.upstream_task_ids = self.upstream_task_ids
        op.downstream_task_ids = self.downstream_task_ids
        op.start_date, op.end_date = self.start_date, self.end_date
        return op
