"""What an executor is handed (one attempt to run) and what it reports back; plain, picklable, JSON-able."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from nbflow.runtime.dag_source import DagSource
from nbflow.store.keys import TIKey


@dataclass(frozen=True, slots=True)
class Workload:
    """Run task `task_id` of run `run_id` (map index, attempt `try_number`) from the DAG in `source`.

    `source` may be given as a file path or as the dict of a DagSource (what JSON brings back).
    """

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    source: DagSource
    queued_by_job_id: int | None = None
    execution_timeout: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.source, str):
            object.__setattr__(self, "source", DagSource.for_file(self.source))
        elif isinstance(self.source, dict):
            object.__setattr__(self, "source", DagSource.from_dict(self.source))

    @property
    def fileloc(self) -> str:
        return self.source.location

    @property
    def key(self) -> TIKey:
        return TIKey(self.dag_id, self.task_id, self.run_id, self.map_index)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Workload":
        return cls(**json.loads(text))


@dataclass(frozen=True, slots=True)
class ExecutorEvent:
    """An attempt's process ended; exit_code 0 means it recorded its own result in the database."""

    key: TIKey
    try_number: int
    exit_code: int
    message: str = ""
    noted: bool = False  # the attempt's log already says why it died (the local executor's worker wrote it)
