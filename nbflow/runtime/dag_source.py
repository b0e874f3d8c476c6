"""Where a DAG comes from, as data: a `.py` file, an `.ipynb` file, or cells registered from a kernel.

A workload carries its DAG's `DagSource`, so whoever runs the attempt (the warm worker, a process it
forks, later a remote worker) can load the DAG without sharing the scheduler's memory: a file is
read from its path; kernel cells travel as their text, since there is no file to read. The content
hash tells a loader whether what it holds is still the DAG that was scheduled.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG

SourceKind = Literal["python", "notebook", "cells"]
KERNEL_PREFIX = "kernel:"


@dataclass(frozen=True, slots=True)
class DagSource:
    """One DAG origin. `location` is a path for files, `kernel:<dag_id>` for kernel cells; `text` is
    carried only for cells (a file is read where it is loaded)."""

    kind: SourceKind
    location: str
    content_hash: str = ""
    text: str | None = None

    @classmethod
    def for_file(cls, path: str, content: bytes = b"") -> "DagSource":
        kind: SourceKind = "notebook" if path.endswith(".ipynb") else "python"
        return cls(kind, path, content_hash(content) if content else "")

    @classmethod
    def for_cells(cls, dag_id: str, text: str) -> "DagSource":
        return cls("cells", KERNEL_PREFIX + dag_id, content_hash(text.encode()), text)

    @property
    def is_file(self) -> bool:
        return self.kind != "cells"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DagSource":
        return cls(**data)

    def __str__(self) -> str:
        return self.location


def adopt_kernel_dag(dag: "DAG", source: "DagSource") -> None:
    """Mark a DAG built from kernel cells: it travels as that source, and it is not paused at creation
    (it was defined to run now, from the notebook), unless the DAG itself says otherwise."""
    dag.source = source  # type: ignore[attr-defined]
    if dag.is_paused_upon_creation is None:
        dag.is_paused_upon_creation = False


def content_hash(content: bytes) -> str:
    import hashlib  # here: loading OpenSSL costs ~3 ms of every `dags list`, which hashes nothing when unchanged
    return hashlib.sha256(content).hexdigest()[:16]


def source_of(dag: "DAG") -> DagSource:
    """The source a DAG was loaded from (set by its loader); a DAG built in plain code has its file."""
    source = getattr(dag, "source", None)
    if isinstance(source, DagSource):
        return source
    return DagSource.for_file(dag.fileloc)


# Kernel cells already built in this process, by content hash: a worker or an attempt process builds a
# DAG from the same text once.
_built: dict[str, dict[str, "DAG"]] = {}
_lock = threading.Lock()


def dags_from_cells(source: DagSource) -> dict[str, "DAG"]:
    """The DAGs that kernel cells define (raises DagDefinitionError / MagicSyntaxError for bad cells)."""
    if source.kind != "cells" or source.text is None:
        raise ValueError(f"{source.location}: not a cells source")
    with _lock:
        cached = _built.get(source.content_hash)
    if cached is not None:
        return cached
    from nbflow.exceptions import DagDefinitionError
    from nbflow.runtime.notebook_dags import build_dags, cells_from_json

    cells, base_folder = cells_from_json(source.text)
    result = build_dags(cells, where=source.location, base_folder=base_folder)
    if result.errors:
        raise DagDefinitionError(result.errors[0])
    dags = {dag.dag_id: dag for dag in result.dags}
    for dag in dags.values():
        adopt_kernel_dag(dag, source)
    with _lock:
        _built[source.content_hash] = dags
    return dags


def load_dag(source: DagSource, dag_id: str, known: dict[str, "DAG"]) -> "DAG | None":
    """The DAG `dag_id` from `source`: from kernel cells when that is its origin, else from `known`
    (what this process parsed of the dags folder)."""
    if source.kind == "cells":
        return dags_from_cells(source).get(dag_id)
    return known.get(dag_id)


__all__ = ["DagSource", "adopt_kernel_dag", "content_hash", "dags_from_cells", "load_dag", "source_of"]
