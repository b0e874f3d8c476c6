"""Running DAGs in process for the authoring, operator and compatibility tests.

`run(dag, tmp_path)` runs a whole DAG run with `run_dag_in_process`, logs under `tmp_path/"logs"`,
and returns a `Ran` that answers by task: state, XCom value, log text.
"""
from __future__ import annotations

import runpy
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbflow.authoring.dag import DAG
from nbflow.runtime.inprocess import RunResult, make_run_info, run_dag_in_process
from nbflow.runtime.logs import attempt_log_path
from nbflow.runtime.run_info import DagRunInfo, TIKey
from nbflow.runtime.xcom import MemoryXComStore
from nbflow.utils.serialization import deserialize

LOGICAL_DATE = datetime(2025, 1, 2, tzinfo=timezone.utc)


@dataclass
class Ran:
    """One finished in-process DAG run, with its XComs and log folder."""

    dag: DAG
    result: RunResult
    xcoms: MemoryXComStore
    log_folder: Path

    @property
    def state(self) -> str:
        return self.result.state

    @property
    def states(self) -> dict[str, str | None]:
        """`task_id` (or `task_id[i]` for a mapped instance) → final state."""
        return {row["task_id"] + (f"[{row['map_index']}]" if row["map_index"] >= 0 else ""): row["state"]
                for row in self.result.tasks}

    def row(self, task_id: str, map_index: int = -1) -> dict[str, Any]:
        return next(r for r in self.result.tasks if r["task_id"] == task_id and r["map_index"] == map_index)

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        run = self.result.run
        return deserialize(self.xcoms.get(TIKey(run.dag_id, task_id, run.run_id, map_index), key))

    def log_path(self, task_id: str, attempt: int = 1, map_index: int = -1) -> Path:
        run = self.result.run
        return attempt_log_path(self.log_folder, run.dag_id, run.run_id, task_id, attempt, map_index)

    def log(self, task_id: str, attempt: int = 1, map_index: int = -1) -> str:
        return self.log_path(task_id, attempt, map_index).read_text(encoding="utf-8")


def run(dag: DAG, tmp_path: Path, *, conf: dict[str, Any] | None = None,
        logical_date: datetime = LOGICAL_DATE, run_info: DagRunInfo | None = None,
        max_xcom_size: int | None = None) -> Ran:
    """Run every task of `dag` in this process; retry delays really wait (keep them small)."""
    xcoms = MemoryXComStore()
    log_folder = tmp_path / "logs"
    info = run_info or make_run_info(dag, logical_date, conf or {})
    result = run_dag_in_process(dag, run=info, log_folder=log_folder, xcoms=xcoms, max_xcom_size=max_xcom_size)
    return Ran(dag, result, xcoms, log_folder)


def load_dag(path: Path, dag_id: str) -> DAG:
    """The DAG `dag_id` defined by the file at `path`, loaded as a DagBag would (DagBag when present)."""
    try:
        from nbflow.runtime.dagbag import DagBag  # written alongside these tests; prefer it when present
    except ImportError:
        DagBag = None  # noqa: N806
    if DagBag is not None:
        bag = DagBag(path)
        errors = getattr(bag, "import_errors", {})
        assert not errors, errors
        return bag.get_dag(dag_id)  # type: ignore[no-any-return]
    found = [v for v in runpy.run_path(str(path), run_name=f"dagfile_{path.stem}").values()
             if isinstance(v, DAG) and v.dag_id == dag_id]
    if not found:
        from nbflow.authoring import context
        found = [d for d in context.autoregistered if d.dag_id == dag_id and d.fileloc == str(path)]
    assert found, f"{path} defines no DAG {dag_id!r}"
    return found[-1]
