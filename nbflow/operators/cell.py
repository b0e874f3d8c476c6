"""CellTaskOperator: a notebook cell's source, run as a task.

The source is the task (never a function object from `__main__`), so the cell runs the same wherever
the DAG is loaded: in a kernel, in the warm worker, in a DagBag reading a saved notebook. Upstream
return values are bound to variables named after the upstream task ids, `context` to the task
context, and the value of the cell's last expression is the task's return value, as in Jupyter.
"""
from __future__ import annotations

import ast
import linecache
from collections.abc import Sequence
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.exceptions import DagDefinitionError


class CellTaskOperator(BaseOperator):
    """Run `source` after the DAG's `setup` sources, in a fresh namespace; return its last expression."""

    ui_color = "#e8f0fe"
    custom_operator_name = "%%task"
    pulls_upstream_returns = True  # the worker reads the upstream return values with the claim

    def __init__(self, *, source: str, setup: Sequence[str] = (), cell: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.setup = tuple(setup)
        self.cell = cell
        compile_cell(source, self.filename)  # a syntax error is the definition's error, not the run's

    @property
    def filename(self) -> str:
        """What tracebacks show for the cell's lines."""
        return f"<cell task {self.dag_id}.{self.task_id}>" if self.has_dag else f"<cell task {self.task_id}>"

    def execute(self, context: dict[str, Any]) -> Any:
        namespace: dict[str, Any] = {"__name__": "__nbflow_cell__", "context": context}
        ti = context.get("ti")
        for upstream in sorted(self.upstream_task_ids):
            if upstream.isidentifier():
                namespace[upstream] = ti.xcom_pull(task_ids=upstream) if ti is not None else None
        for number, setup in enumerate(self.setup, 1):
            exec(compile_cell(setup, f"<setup {number} of {self.dag_id}>").body, namespace)  # noqa: S102
        code = compile_cell(self.source, self.filename)
        exec(code.body, namespace)  # noqa: S102 - the user's own cell
        return eval(code.last, namespace) if code.last is not None else None  # noqa: S307


class CompiledCell:
    """A cell compiled as Jupyter runs it: every statement, then its last expression's value."""

    def __init__(self, body: Any, last: Any) -> None:
        self.body, self.last = body, last


def compile_cell(source: str, filename: str) -> CompiledCell:
    """Compile now, so a syntax error is reported when the cell is defined, with its line."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise DagDefinitionError(f"{filename}, line {err.lineno}: SyntaxError: {err.msg}") from None
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = compile(ast.Expression(tree.body.pop().value), filename, "eval")
    body = compile(tree, filename, "exec")
    # Tracebacks show the cell's lines, not just its line numbers.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    return CompiledCell(body, last)


__all__ = ["CellTaskOperator", "compile_cell"]
