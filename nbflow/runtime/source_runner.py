"""`python -m nbflow.runtime.source_runner`: test a DAG, or run one task, in a process of its own.

The kernel's `%dag test` and `%%task --run` start this process (the kernel is never forked and never
runs a task) and relay its output under the cell. The request is one JSON object on stdin:

    {"action": "test", "source": {...DagSource...}, "dag_id": "etl", "logical_date": null, "conf": {}}
    {"action": "run_task", "source": {...}, "dag_id": "etl", "task_id": "load", "upstream": {"extract": "<json>"}}

Human-readable lines go to stdout as they happen; `run_task` ends with one line that starts with
RESULT_MARK and holds the outcome as JSON. `test` also prints, marked with EVENT_MARK, one JSON line for
the run and one per task instance starting or ending (the kernel's live graph follows them). The exit
code is 0 when the run or task succeeded.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nbflow.runtime.dag_source import DagSource
from nbflow.utils.state import DagRunState, TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG

RESULT_MARK = "\x1enbflow-result "
EVENT_MARK = "\x1enbflow-event "


def _emit(event: dict[str, Any]) -> None:
    print(EVENT_MARK + json.dumps(event, default=str), flush=True)


def load(source: DagSource, dag_id: str) -> "DAG":
    from nbflow.exceptions import DagNotFound
    from nbflow.runtime.dag_source import dags_from_cells
    from nbflow.runtime.dagbag import DagBag

    if source.kind == "cells":
        dags = dags_from_cells(source)
    else:
        bag = DagBag(source.location)
        if source.location in bag.import_errors:
            raise DagNotFound(bag.import_errors[source.location].splitlines()[0])
        dags = bag.dags
    if dag_id not in dags:
        raise DagNotFound(f"DAG {dag_id!r} is not defined by {source.location}")
    return dags[dag_id]


def test(request: dict[str, Any]) -> int:
    from nbflow.configuration import load_config
    from nbflow.runtime.dag_test import test_dag

    config = load_config()
    dag = load(DagSource.from_dict(request["source"]), request["dag_id"])
    logical = datetime.fromisoformat(request["logical_date"]) if request.get("logical_date") else None
    result = test_dag(dag, logical_date=logical, run_conf=request.get("conf") or {}, log_folder=config.log_folder,
                      out=sys.stdout, isolate=True, max_xcom_size=config.getint("core", "max_xcom_size"),
                      on_run=lambda run: _emit({"kind": "run", "run_id": run.run_id,
                                                "logical_date": run.logical_date.isoformat()}),
                      on_event=lambda e: _emit({"kind": e.kind, "task_id": e.task_id, "map_index": e.map_index,
                                                "state": e.state, "try_number": e.try_number,
                                                "duration": e.duration}))
    return 0 if result.state == DagRunState.SUCCESS else 1


def run_task(request: dict[str, Any]) -> int:
    """One task against given upstream return values; its output is echoed, its return value reported."""
    from nbflow.configuration import load_config
    from nbflow.runtime.inprocess import make_run_info
    from nbflow.runtime.isolated import run_attempt_in_child
    from nbflow.runtime.run_info import TIKey
    from nbflow.runtime.task_runner import AttemptRequest
    from nbflow.runtime.xcom import MemoryXComStore

    config = load_config()
    dag = load(DagSource.from_dict(request["source"]), request["dag_id"])
    task = dag.get_task(request["task_id"])
    run = make_run_info(dag, None, request.get("conf") or {}, run_type="interactive")
    xcoms = MemoryXComStore()
    for upstream, value in (request.get("upstream") or {}).items():
        xcoms.set(TIKey(dag.dag_id, upstream, run.run_id, -1), "return_value", value)
    params = dag.params.validate(run.conf, where=f"DAG {dag.dag_id!r}")
    attempt = AttemptRequest(task=task, run=run, map_index=-1, try_number=1, params=params,
                             log_folder=config.log_folder, max_xcom_size=config.getint("core", "max_xcom_size"),
                             max_tries=0)
    outcome = run_attempt_in_child(attempt, xcoms, echo=sys.stdout)
    sys.stdout.flush()
    value = xcoms.get(TIKey(dag.dag_id, task.task_id, run.run_id, -1), "return_value")
    print(RESULT_MARK + json.dumps({"state": outcome.state, "error": outcome.error, "return_value": value,
                                    "log_path": outcome.log_path, "duration": outcome.duration}), flush=True)
    return 0 if outcome.state == TaskInstanceState.SUCCESS else 1


def main() -> int:
    from nbflow.exceptions import NbflowException

    request = json.loads(sys.stdin.read())
    try:
        return {"test": test, "run_task": run_task}[request["action"]](request)
    except NbflowException as err:
        print(f"error: {err}", flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
