"""DAGs made of magic cells: built the same way from a saved notebook (no kernel) and from a kernel.

The cell source is the one truth. `build_dags` turns an ordered list of `MagicCell`s into DAGs; the
DagBag calls it on the cells of an `.ipynb` file read with nbformat, the kernel calls it on the cells
its magics registered, and the warm worker on the cells a workload carries. A bad cell costs only
its own DAG, with an error naming the cell; the notebook's other DAGs still load.
"""
from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import DagDefinitionError, MagicSyntaxError
from nbflow.runtime.magic_cells import MagicCell, magic_cells_of, parameter_value

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.serialized_dag import SerializedDag

DEFAULT_START = datetime(2025, 1, 1, tzinfo=timezone.utc)  # fixed, so every parse of a cell agrees


@dataclass
class DagCells:
    """The cells of one DAG, in order: its `%%dag` cell, its setup cells, its task cells."""

    dag_id: str
    dag_cell: MagicCell | None = None
    setups: list[MagicCell] = field(default_factory=list)
    tasks: list[MagicCell] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BuildResult:
    dags: tuple["DAG", ...]
    errors: tuple[str, ...]  # one line each: "<where>: cell N (...): what is wrong"


def group_cells(cells: Sequence[MagicCell], *, where: str) -> tuple[dict[str, DagCells], list[str]]:
    """Assign each cell to its DAG (`--dag`, else the last `%%dag` above it)."""
    groups: dict[str, DagCells] = {}
    loose: list[str] = []
    current: str | None = None
    for cell in cells:
        try:
            args = cell.arguments()
        except MagicSyntaxError as err:
            target = _dag_id_guess(cell) or current
            message = f"{where}: {cell.where}: {err}"
            if target is None:
                loose.append(message)
            else:
                groups.setdefault(target, DagCells(target)).errors.append(message)
            continue
        if cell.magic == "dag":
            group = groups.setdefault(args.dag_id, DagCells(args.dag_id))
            if group.dag_cell is not None:
                group.errors.append(f"{where}: {cell.where}: DAG {args.dag_id!r} is declared twice "
                                    f"(also in {group.dag_cell.where}); give each %%dag its own DAG id")
            group.dag_cell = cell
            current = args.dag_id
            continue
        dag_id = args.dag or current
        if dag_id is None:
            loose.append(f"{where}: {cell.where}: no DAG to add it to; put a %%dag cell above it or pass --dag")
            continue
        group = groups.setdefault(dag_id, DagCells(dag_id))
        (group.setups if cell.magic == "setup" else group.tasks).append(cell)
    for group in groups.values():
        if group.dag_cell is None and not group.errors:
            first = (group.tasks or group.setups)[0]
            group.errors.append(f"{where}: {first.where}: DAG {group.dag_id!r} has no %%dag cell; declare it "
                                f"with `%%dag {group.dag_id}` first")
    return groups, loose


def _dag_id_guess(cell: MagicCell) -> str | None:
    words = cell.line.split()
    if cell.magic == "dag":
        return words[0] if words and not words[0].startswith("-") else None
    if "--dag" in words and words.index("--dag") + 1 < len(words):
        return words[words.index("--dag") + 1]
    return None


def build_dags(cells: Sequence[MagicCell], *, where: str, base_folder: str | None = None) -> BuildResult:
    """Every DAG the cells define; a DAG with a bad cell is left out, with an error naming the cell."""
    groups, errors = group_cells(cells, where=where)
    dags: list[DAG] = []
    for group in groups.values():
        if group.errors:
            errors.extend(group.errors)
            continue
        try:
            dags.append(build_dag(group, where=where, base_folder=base_folder))
        except DagDefinitionError as err:
            errors.append(str(err) if str(err).startswith(where) else f"{where}: {err}")
    return BuildResult(tuple(dags), tuple(errors))


def build_dag(group: DagCells, *, where: str, base_folder: str | None = None) -> "DAG":
    """One DAG from its cells; raises DagDefinitionError naming the cell at fault."""
    from nbflow.authoring import context as authoring_context
    from nbflow.authoring.dag import DAG

    assert group.dag_cell is not None
    head = group.dag_cell
    args = head.arguments()
    default_args: dict[str, Any] = json.loads(args.default_args) if args.default_args else {}
    if args.retries is not None:
        default_args["retries"] = args.retries
    if args.retry_delay is not None:
        default_args["retry_delay"] = timedelta(seconds=args.retry_delay)
    start = start_date_of(args, where=f"{where}: {head.where}")
    schedule = None if args.schedule in (None, "None", "none", "") else args.schedule
    kwargs: dict[str, Any] = {"schedule": schedule, "start_date": start, "catchup": args.catchup,
                              "default_args": default_args, "fileloc": where,
                              "tags": [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None,
                              "description": args.description}
    if args.max_active_runs is not None:
        kwargs["max_active_runs"] = args.max_active_runs
    try:
        dag = DAG(args.dag_id, **kwargs)
    except DagDefinitionError as err:
        raise DagDefinitionError(f"{where}: {head.where}: {err}") from None
    except (TypeError, ValueError) as err:
        raise DagDefinitionError(f"{where}: {head.where}: {type(err).__name__}: {err}") from None
    module = _module_for(where, dag.dag_id)
    created = len(authoring_context.autoregistered)
    try:
        with dag:
            if head.body.strip():
                _run_dag_body(head, module, where)
            setups = [cell.body for cell in group.setups]
            tasks = {cell: _make_task(cell, setups, where, base_folder) for cell in group.tasks}
    finally:
        del authoring_context.autoregistered[created:]
    for cell, task in tasks.items():
        for upstream in cell.arguments().upstream:
            if upstream not in dag.task_dict:
                known = ", ".join(sorted(dag.task_dict)) or "none"
                raise DagDefinitionError(f"{where}: {cell.where}: upstream {upstream!r} is not a task of DAG "
                                         f"{dag.dag_id!r}; known: {known}")
            dag.task_dict[upstream] >> task
    try:
        dag.validate()
    except DagDefinitionError as err:
        raise DagDefinitionError(f"{where}: {err}") from None
    return dag


def start_date_of(args: Any, *, where: str) -> datetime:
    """A `%%dag --start-date` as an aware datetime (UTC unless it says otherwise)."""
    try:
        start = datetime.fromisoformat(args.start_date) if args.start_date else DEFAULT_START
    except ValueError:
        raise DagDefinitionError(f"{where}: --start-date {args.start_date!r} is not an ISO date "
                                 f"(e.g. 2025-01-31)") from None
    return start if start.tzinfo is not None else start.replace(tzinfo=timezone.utc)


def _module_for(where: str, dag_id: str) -> types.ModuleType:
    """A fresh module for the `%%dag` body, registered so its functions pickle and inspect as usual."""
    import hashlib
    name = f"nbflow_cells_{hashlib.sha1(f'{where}:{dag_id}'.encode()).hexdigest()[:12]}"
    module = types.ModuleType(name)
    module.__file__ = where
    sys.modules[name] = module
    return module


def _run_dag_body(cell: MagicCell, module: types.ModuleType, where: str) -> None:
    filename = f"{where} {cell.where}"
    try:
        code = compile(cell.body, filename, "exec")
    except SyntaxError as err:
        raise DagDefinitionError(f"{where}: {cell.where}, line {err.lineno}: SyntaxError: {err.msg}") from None
    try:
        exec(code, module.__dict__)  # noqa: S102 - the DAG's own definition code, as a DAG file's
    except DagDefinitionError as err:
        raise DagDefinitionError(f"{where}: {cell.where}: {err}") from None
    except Exception as err:  # noqa: BLE001 - any failure of the body is this DAG's definition error
        line = _line_in(err, filename)
        at = f", line {line}" if line else ""
        raise DagDefinitionError(f"{where}: {cell.where}{at}: {type(err).__name__}: {err}") from None


def _line_in(err: BaseException, filename: str) -> int | None:
    tb, line = err.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _make_task(cell: MagicCell, setups: list[str], where: str, base_folder: str | None) -> Any:
    args = cell.arguments()
    options: dict[str, Any] = {"task_id": args.task_id}
    if args.retries is not None:
        options["retries"] = args.retries
    if args.retry_delay is not None:
        options["retry_delay"] = timedelta(seconds=args.retry_delay)
    if args.trigger_rule:
        options["trigger_rule"] = args.trigger_rule
    if args.pool:
        options["pool"] = args.pool
    if args.timeout is not None:
        options["execution_timeout"] = timedelta(seconds=args.timeout)
    if args.email:
        options["email"] = [a.strip() for a in args.email.split(",") if a.strip()]
    for flag in ("email_on_failure", "email_on_retry"):
        if getattr(args, flag, None) is not None:
            options[flag] = getattr(args, flag)
    try:
        if cell.magic == "task":
            from nbflow.operators.cell import CellTaskOperator
            return CellTaskOperator(source=cell.body, setup=setups, cell=cell.cell, **options)
        if cell.magic == "bash_task":
            from nbflow.operators.bash import BashOperator
            if not cell.body.strip():
                raise DagDefinitionError("the cell has no bash script below the magic line")
            return BashOperator(bash_command=cell.body, **options)
        from nbflow.operators.notebook import NotebookOperator
        notebook = args.notebook
        if base_folder and not os.path.isabs(notebook) and (Path(base_folder) / notebook).exists():
            notebook = str(Path(base_folder) / notebook)
        parameters = {name: parameter_value(value) for name, value in args.parameter}
        return NotebookOperator(input_nb=notebook, parameters=parameters, **options)
    except DagDefinitionError as err:
        raise DagDefinitionError(f"{where}: {cell.where}: {err}") from None
    except (TypeError, ValueError) as err:
        raise DagDefinitionError(f"{where}: {cell.where}: {type(err).__name__}: {err}") from None


# -- drift between a kernel's DAG and the saved file ---------------------------------------------------

def task_differences(kernel: "DAG", saved: "DAG | SerializedDag") -> list[str]:
    """One phrase per task that differs between the kernel's DAG and the saved file's (empty: none); the
    saved one may be as the DAG processor stored it (a task stored without a fingerprint counts as same)."""
    from nbflow.runtime.serialized_dag import task_fingerprint
    out = []
    for task_id in sorted(set(kernel.task_dict) | set(saved.task_dict)):
        if task_id not in saved.task_dict:
            out.append(f"{task_id}: only in the kernel (not saved)")
        elif task_id not in kernel.task_dict:
            out.append(f"{task_id}: only in the saved file")
        else:
            stored = task_fingerprint(saved.task_dict[task_id])
            if stored is not None and task_fingerprint(kernel.task_dict[task_id]) != stored:
                out.append(f"{task_id}: changed in the kernel (not saved)")
    return out


# -- reading cells ------------------------------------------------------------------------------------

def read_notebook(path: str, content: bytes | None = None) -> list[MagicCell]:
    """The magic cells of a saved notebook, read statically (no kernel); other cells are ignored.

    A version-4 notebook (what Jupyter has written since 2015) is read as the JSON it is: importing
    nbformat costs seconds (jsonschema's format checkers), which a scheduler would pay on its first
    notebook and `nbflow dags list` on every call. Older versions go through nbformat, which converts them.
    """
    try:
        text = content.decode("utf-8") if content is not None else Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the file holds no JSON object")
        raw_cells = data.get("cells") if data.get("nbformat") == 4 else _cells_by_nbformat(text)
        if not isinstance(raw_cells, list):
            raise ValueError("its 'cells' is not a list")
    except Exception as err:  # noqa: BLE001 - any unreadable notebook is this file's import error
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DagDefinitionError(f"{path}: not a readable notebook: {type(err).__name__}: {first}") from None
    cells: list[MagicCell] = []
    for number, cell in enumerate(raw_cells, 1):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            cells.extend(magic_cells_of(source if isinstance(source, str) else "".join(source), number))
    return cells


def _cells_by_nbformat(text: str) -> Any:
    import nbformat

    return nbformat.reads(text, as_version=4).get("cells", [])


def cells_to_json(cells: Sequence[MagicCell], *, base_folder: str | None = None) -> str:
    return json.dumps({"base_folder": base_folder, "cells": [cell.to_dict() for cell in cells]}, sort_keys=True)


def cells_from_json(text: str) -> tuple[list[MagicCell], str | None]:
    data = json.loads(text)
    return [MagicCell(**cell) for cell in data["cells"]], data.get("base_folder")


__all__ = ["BuildResult", "DagCells", "build_dag", "build_dags", "cells_from_json", "cells_to_json",
           "group_cells", "read_notebook", "start_date_of", "task_differences"]
