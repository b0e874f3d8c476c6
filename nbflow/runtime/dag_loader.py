"""Importing the one file that defines a DAG, in this process, for the commands that run its code here.

`dags test`, `tasks test`, `tasks run` and the sequential executor run user code in their own
process, but they must not import the rest of the dags folder: a file that exits, hangs or is slow
at import would take them down with it. They learn from the DAG processor's catalog (files parsed in
children) which file defines the DAG and whether it imports; this loader then imports that file
alone, as a one-file DagBag (helper modules beside it import as usual; a change re-imports it).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nbflow.exceptions import DagNotFound
from nbflow.runtime.dag_source import DagSource, dags_from_cells

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.dagbag import DagBag


class DagFileLoader:
    """DAGs of single files of `folder`, each file imported here only when one of its DAGs is asked for."""

    def __init__(self, folder: Path, *, import_timeout: float) -> None:
        self.folder = Path(os.path.abspath(folder))
        self.import_timeout = import_timeout
        self._bags: dict[str, "DagBag"] = {}  # by file: a bag that imports that file and no other

    def load(self, source: DagSource, dag_id: str) -> "DAG":
        """The DAG `dag_id` from `source` (a file, imported again if it changed, or kernel cells);
        DagNotFound says why the file no longer gives it."""
        if source.kind == "cells":
            dag = dags_from_cells(source).get(dag_id)
            if dag is None:
                raise DagNotFound(f"DAG {dag_id!r} is no longer defined in {source.location}")
            return dag
        bag = self._bags.get(source.location)
        if bag is None:
            from nbflow.runtime.dagbag import DagBag
            only = frozenset({source.location})
            bag = DagBag(self.folder, import_timeout=self.import_timeout, collect=False, only_files=lambda: only)
            self._bags[source.location] = bag
        bag.refresh()
        if dag_id not in bag.dags and not bag.import_errors:
            raise DagNotFound(f"DAG {dag_id!r} is no longer defined in {source.location}")
        return bag.get_dag(dag_id)


__all__ = ["DagFileLoader"]
