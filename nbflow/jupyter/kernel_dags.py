"""The DAGs this kernel's magics defined, kept as their cells: the cell text is the one truth.

Each definition is checked by building the whole DAG from its cells with the same code the DagBag
uses for a saved notebook; a cell that would break its DAG is refused and changes nothing. Running a
defining cell again replaces what it defined (a task by its id, a setup cell by its cell id).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nbflow.exceptions import DagDefinitionError, DagNotFound, MagicSyntaxError
from nbflow.runtime.dag_source import KERNEL_PREFIX, DagSource, adopt_kernel_dag
from nbflow.runtime.magic_cells import MagicCell
from nbflow.runtime.notebook_dags import build_dags, cells_to_json

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG


@dataclass
class _DagEntry:
    cells: list[tuple[str, MagicCell]] = field(default_factory=list)  # (key, cell); the %%dag cell first
    dag: "DAG | None" = None


class KernelDags:
    """DAG id → its cells and the DAG they build, in the order the user defined them."""

    def __init__(self, base_folder: str) -> None:
        self.base_folder = base_folder
        self._entries: dict[str, _DagEntry] = {}
        self.current: str | None = None  # the DAG a cell without --dag belongs to: the last %%dag run

    @property
    def dag_ids(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, dag_id: str) -> bool:
        return dag_id in self._entries

    def dag(self, dag_id: str) -> "DAG":
        entry = self._entries.get(dag_id)
        if entry is None or entry.dag is None:
            known = ", ".join(self.dag_ids) or "none yet"
            raise DagNotFound(f"DAG {dag_id!r} is not defined in this kernel; defined here: {known}")
        return entry.dag

    def cells(self, dag_id: str) -> list[MagicCell]:
        self.dag(dag_id)
        return [cell for _, cell in self._entries[dag_id].cells]

    def source(self, dag_id: str) -> DagSource:
        return DagSource.for_cells(dag_id, cells_to_json(self.cells(dag_id), base_folder=self.base_folder))

    def target_of(self, cell: MagicCell) -> str:
        """The DAG a cell belongs to; MagicSyntaxError when it names none or an unknown one."""
        args = cell.arguments()
        if cell.magic == "dag":
            return args.dag_id
        dag_id = args.dag or self.current
        if dag_id is None:
            raise MagicSyntaxError(f"%%{cell.magic}: no DAG yet; run a %%dag cell first or pass --dag DAG_ID")
        if dag_id not in self._entries:
            raise MagicSyntaxError(f"%%{cell.magic}: unknown DAG {dag_id!r}; defined here: "
                                   f"{', '.join(self.dag_ids) or 'none yet'} (run its %%dag cell first)")
        return dag_id

    def define(self, cell: MagicCell, *, cell_id: str | None = None) -> "DAG":
        """Add or replace a definition; the DAG it belongs to, rebuilt. Raises without changing anything
        when the DAG would not build (bad argument, unknown upstream, cycle, syntax error)."""
        dag_id = self.target_of(cell)
        entry = self._entries.get(dag_id, _DagEntry())
        key = self._key(cell, cell_id)
        cells = list(entry.cells)
        keys = [k for k, _ in cells]
        if key in keys:
            cells[keys.index(key)] = (key, cell)
        elif cell.magic == "dag":
            cells.insert(0, (key, cell))
        else:
            cells.append((key, cell))
        dag = self._build(dag_id, [c for _, c in cells])
        self._entries[dag_id] = _DagEntry(cells, dag)
        if cell.magic == "dag":
            self.current = dag_id
        return dag

    def remove_task(self, dag_id: str, task_id: str) -> "DAG":
        """Forget a task defined by a cell (its edges go with it)."""
        entry = self._entries.get(dag_id)
        if entry is None:
            raise DagNotFound(f"DAG {dag_id!r} is not defined in this kernel")
        cells = [(k, c) for k, c in entry.cells if k != f"task:{task_id}"]
        if len(cells) == len(entry.cells):
            raise MagicSyntaxError(f"DAG {dag_id!r} has no cell task {task_id!r}")
        self._entries[dag_id] = _DagEntry(cells, self._build(dag_id, [c for _, c in cells]))
        return self._entries[dag_id].dag  # type: ignore[return-value]

    def _build(self, dag_id: str, cells: list[MagicCell]) -> "DAG":
        where = KERNEL_PREFIX + dag_id
        result = build_dags(cells, where=where, base_folder=self.base_folder)
        if result.errors:
            raise DagDefinitionError(result.errors[0].removeprefix(f"{where}: "))
        dag = next(d for d in result.dags if d.dag_id == dag_id)
        adopt_kernel_dag(dag, DagSource.for_cells(dag_id, cells_to_json(cells, base_folder=self.base_folder)))
        return dag

    @staticmethod
    def _key(cell: MagicCell, cell_id: str | None) -> str:
        if cell.magic == "dag":
            return "dag"
        if cell.magic == "setup":
            return f"setup:{cell_id or hashlib.sha1(cell.body.encode()).hexdigest()[:12]}"
        return f"task:{cell.arguments().task_id}"


__all__ = ["KernelDags"]
