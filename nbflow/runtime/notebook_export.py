"""`%dag export`: a DAG made of magic cells, written out as an ordinary `.py` DAG file.

The file builds the same tasks from the same sources (cell tasks stay CellTaskOperators holding their
cell's text), so `nbflow dags test` on it runs what the notebook ran.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from nbflow.exceptions import MagicSyntaxError
from nbflow.runtime.magic_cells import MagicCell, parameter_value
from nbflow.runtime.notebook_dags import group_cells, start_date_of


def export_python(cells: Sequence[MagicCell], dag_id: str, *, where: str) -> str:
    """The text of a `.py` DAG file equivalent to the cells of `dag_id`."""
    groups, _ = group_cells(cells, where=where)
    group = groups.get(dag_id)
    if group is None or group.dag_cell is None:
        raise MagicSyntaxError(f"DAG {dag_id!r} is not defined by {where}")
    if group.errors:
        raise MagicSyntaxError(group.errors[0])
    head = group.dag_cell.arguments()
    default_args: dict[str, Any] = {}
    if head.default_args:
        import json
        default_args.update(json.loads(head.default_args))
    if head.retries is not None:
        default_args["retries"] = head.retries
    start = start_date_of(head, where=where)
    dag_kwargs = [f"schedule={None if head.schedule in (None, 'None', 'none', '') else head.schedule!r}",
                  f"start_date=datetime.fromisoformat({start.isoformat()!r})", f"catchup={head.catchup}"]
    if head.retry_delay is not None:
        dag_kwargs.append(f"default_args={{**{default_args!r}, 'retry_delay': timedelta(seconds={head.retry_delay!r})}}")
    elif default_args:
        dag_kwargs.append(f"default_args={default_args!r}")
    if head.max_active_runs is not None:
        dag_kwargs.append(f"max_active_runs={head.max_active_runs}")
    if head.tags:
        dag_kwargs.append(f"tags={[t.strip() for t in head.tags.split(',') if t.strip()]!r}")
    if head.description:
        dag_kwargs.append(f"description={head.description!r}")

    lines = [f'"""DAG {dag_id!r}, exported from {where} by `%dag export`."""',
             "from datetime import datetime, timedelta", "",
             "from nbflow import DAG",
             "from nbflow.operators.bash import BashOperator",
             "from nbflow.operators.cell import CellTaskOperator",
             "from nbflow.operators.notebook import NotebookOperator", ""]
    setups = [cell.body for cell in group.setups]
    lines.append(f"SETUP = {setups!r}  # the %%setup cells, run first by every cell task")
    lines.append("")
    lines.append(f"with DAG({dag_id!r}, {', '.join(dag_kwargs)}) as dag:")
    body = group.dag_cell.body.strip("\n")
    if body.strip():
        lines.append(textwrap.indent(body, "    "))
    edges: list[str] = []
    for cell in group.tasks:
        args = cell.arguments()
        options = _task_options(args)
        variable = _variable(args.task_id)
        if cell.magic == "task":
            lines.append(f"    {variable} = CellTaskOperator(task_id={args.task_id!r}, source={cell.body!r}, "
                         f"setup=SETUP{options})")
        elif cell.magic == "bash_task":
            lines.append(f"    {variable} = BashOperator(task_id={args.task_id!r}, bash_command={cell.body!r}{options})")
        else:
            parameters = {n: parameter_value(v) for n, v in args.parameter}
            lines.append(f"    {variable} = NotebookOperator(task_id={args.task_id!r}, input_nb={args.notebook!r}, "
                         f"parameters={parameters!r}{options})")
        for upstream in args.upstream:
            edges.append(f"    dag.get_task({upstream!r}) >> {variable}")
    lines.extend(edges)
    return "\n".join(lines) + "\n"


def _variable(task_id: str) -> str:
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in task_id)
    return f"t_{name}"


def _task_options(args: Any) -> str:
    parts = []
    if args.retries is not None:
        parts.append(f"retries={args.retries}")
    if args.retry_delay is not None:
        parts.append(f"retry_delay=timedelta(seconds={args.retry_delay!r})")
    if args.trigger_rule:
        parts.append(f"trigger_rule={args.trigger_rule!r}")
    if args.pool:
        parts.append(f"pool={args.pool!r}")
    if args.timeout is not None:
        parts.append(f"execution_timeout=timedelta(seconds={args.timeout!r})")
    if args.email:
        parts.append(f"email={[a.strip() for a in args.email.split(',') if a.strip()]!r}")
    for flag in ("email_on_failure", "email_on_retry"):
        if getattr(args, flag, None) is not None:
            parts.append(f"{flag}={getattr(args, flag)!r}")
    return "".join(", " + part for part in parts)


__all__ = ["export_python"]
