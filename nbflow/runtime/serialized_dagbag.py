"""The scheduler's view of the dags folder: serialized DAGs kept fresh by the DAG processor.

It answers what the scheduler asks of a DagBag (`refresh`, `dags`, `import_errors`, `kept`,
`get_dag`) while no DAG file is ever imported in this process: `refresh` runs the DAG processor
(changed files parsed in child processes, results stored) and reads back the stored DAGs, keeping the
same `SerializedDag` object for a DAG whose stored form did not change, so per-DAG caches stay valid.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import DagNotFound
from nbflow.runtime.dag_processor import ProcessorSettings, RefreshResult, in_kernel, refresh, refresh_in_subprocess
from nbflow.runtime.dag_source import KERNEL_PREFIX, DagSource
from nbflow.runtime.dagbag import FolderChanges
from nbflow.runtime.serialized_dag import SerializedDag

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nbflow.configuration import Config


class SerializedDagBag:
    """Serialized DAGs of the dags folder, by dag_id; `refresh()` says which files changed."""

    def __init__(self, session_factory: "Callable[[], Session]", settings: ProcessorSettings, *,
                 sources: "Callable[[], Iterable[DagSource]] | None" = None, config: "Config | None" = None) -> None:
        self.sessions = session_factory
        self.sources = sources  # kernel-registered cells, parsed by the DAG processor as sources
        self.config = config  # for a spawned processor (in a kernel)
        self._added: dict[str, DagSource] = {}
        self._last_seen: tuple[Any, ...] | None = None
        self.settings = settings
        self.dag_folder = settings.folder
        self.dags: dict[str, SerializedDag] = {}
        self.import_errors: dict[str, str] = {}
        self.kept: dict[str, str] = {}  # the stored DAG of a file that breaks stays until the file is fixed
        self._stamps: dict[str, str] = {}  # dag_id -> stored updated_at

    def __repr__(self) -> str:
        return f"<SerializedDagBag {self.dag_folder}: {len(self.dags)} DAGs, {len(self.import_errors)} import errors>"

    def refresh(self) -> FolderChanges:
        """Parse changed files (in children), then take up what is stored; the files that changed."""
        from nbflow.store import serialized_dags as stored
        from nbflow.store import session_scope
        sources = {**({s.location: s for s in self.sources()} if self.sources else {}), **self._added}
        result = self._run_processor(list(sources.values()))
        folder = str(self.dag_folder).rstrip(os.sep) + os.sep
        with session_scope(self.sessions) as session:
            rows = [row for row in stored.list_serialized_dags(session)
                    if row.fileloc.startswith(folder) or row.fileloc.startswith(KERNEL_PREFIX)]
            errors = {path: error for path, error in stored.import_errors(session).items() if path.startswith(folder)}
        dags: dict[str, SerializedDag] = {}
        stamps: dict[str, str] = {}
        for row in rows:
            stamp = row.updated_at.isoformat()
            known = self.dags.get(row.dag_id)
            dags[row.dag_id] = known if known is not None and self._stamps.get(row.dag_id) == stamp \
                else SerializedDag(row.data)
            stamps[row.dag_id] = stamp
        added = tuple(path for path in result.parsed if path not in {d.fileloc for d in self.dags.values()})
        changed = tuple(path for path in result.parsed if path not in added)
        changes = FolderChanges(added, changed, result.removed)
        if errors != self.import_errors or set(dags) != set(self.dags):
            changes = FolderChanges(added or tuple(sorted(set(dags) - set(self.dags))), changed, result.removed)
        self.dags, self._stamps, self.import_errors = dags, stamps, errors
        self.kept = {dag_id: dag.fileloc for dag_id, dag in dags.items() if dag.fileloc in errors}
        return changes

    def _run_processor(self, sources: list[DagSource]) -> RefreshResult:
        """The processor's refresh: forked children here, or in a Jupyter kernel (never forked) a spawned
        process, started only when a file's stamp or a source changed since the last one."""
        if not in_kernel():
            return refresh(self.sessions, self.settings, sources=sources)
        from nbflow.configuration import load_config
        from nbflow.runtime import file_parsing as files
        listing = files.list_dag_files(self.dag_folder) if self.dag_folder.exists() else None
        seen = (tuple(listing.files.items()) if listing else (), tuple(sorted(s.content_hash for s in sources)))
        if seen == self._last_seen:
            return RefreshResult((), len(seen[0]), ())
        self._last_seen = seen
        return refresh_in_subprocess(self.config or load_config(), sources=sources)

    def add_source(self, source: DagSource) -> None:
        """Kernel cells (re)defined a DAG: the processor parses them (in a child) on the next refresh."""
        self._added[source.location] = source

    def remove_source(self, location: str) -> None:
        self._added.pop(location, None)

    def collect(self) -> None:
        self.refresh()

    def get_dag(self, dag_id: str) -> SerializedDag:
        if dag_id in self.dags:
            return self.dags[dag_id]
        known = ", ".join(sorted(self.dags)) or "none"
        raise DagNotFound(f"DAG {dag_id!r} not found in {self.dag_folder}; known: {known}")


__all__ = ["SerializedDagBag"]
