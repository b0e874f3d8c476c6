"""What needs a DAG's user objects when the caller holds only its serialized form: expanding a mapped
task (the scheduler), checking a run's conf against the DAG's Params (`dags trigger`). The DAG file is
loaded in a forked child, never in the caller, and whatever it does there comes back as an error."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import NbflowException
from nbflow.runtime.dag_source import DagSource
from nbflow.runtime.parse_processes import run_in_child

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nbflow.runtime.run_info import DagRunInfo


def load_dag_in_child(source: DagSource, dag_id: str, timeout: float) -> Any:
    """The DAG `dag_id` from `source`, imported in the calling (child) process; NbflowException says why not."""
    from nbflow.runtime.dag_source import dags_from_cells
    from nbflow.runtime.dagbag import parse_file
    if source.kind == "cells":
        dags = dags_from_cells(source)
    else:
        st = os.stat(source.location)
        parsed = parse_file(source.location, (st.st_mtime_ns, st.st_size), timeout=timeout)
        if parsed.errors and not parsed.dags:
            raise NbflowException(parsed.errors[0].splitlines()[0])
        dags = {dag.dag_id: dag for dag in parsed.dags}
    if dag_id not in dags:
        raise NbflowException(f"DAG {dag_id!r} is no longer defined in {source.location}")
    return dags[dag_id]


def count_mapped_instances(source: DagSource, dag_id: str, task_id: str, run: "DagRunInfo",
                           sessions: "Callable[[], Session]", *, timeout: float) -> int:
    """How many instances the mapped task `task_id` expands to in `run`; NbflowException says why not."""

    parent = os.getpid()

    def work() -> int:
        bind = getattr(sessions, "kw", {}).get("bind")
        if bind is not None and os.getpid() != parent:  # in the forked child (a kernel runs this itself)
            from nbflow.store import dispose_after_fork
            dispose_after_fork(bind)
        from nbflow.runtime.expansion import expansion_of
        from nbflow.runtime.xcom_db import DbXComStore
        dag = load_dag_in_child(source, dag_id, timeout)
        params = dag.params.validate(run.conf, where=f"DAG {dag_id!r}")
        return len(expansion_of(dag, task_id, run, params, DbXComStore(sessions)))

    count, error = run_in_child(work, timeout + 1.0)
    if error is not None or not isinstance(count, int):
        raise NbflowException(error or "no answer from the expanding process")
    return count


def _params_problem(source: DagSource, dag_id: str, conf: dict[str, Any], timeout: float) -> str | None:
    """Why `conf` fails the DAG's Params (None: it passes), the DAG loaded in the calling process."""
    from nbflow.exceptions import ParamValidationError
    dag = load_dag_in_child(source, dag_id, timeout)
    try:
        dag.params.validate(conf, where=f"DAG {dag_id!r}")
    except ParamValidationError as err:
        return str(err)
    return None


def _spawned(source: DagSource, dag_id: str, conf: dict[str, Any], timeout: float) -> tuple[str | None, str | None]:
    """`_params_problem` in a spawned `python -m nbflow.runtime.expansion_process`, killed after `timeout`:
    for a Jupyter kernel, which is never forked and must not import a DAG file of the dags folder itself."""
    import json
    import subprocess
    import sys
    request = json.dumps({"source": source.to_dict(), "dag_id": dag_id, "conf": conf, "timeout": timeout})
    try:
        done = subprocess.run([sys.executable, "-m", "nbflow.runtime.expansion_process"], input=request,
                              text=True, capture_output=True, timeout=timeout + 10.0, check=False)
    except subprocess.TimeoutExpired:
        return None, f"its DAG file took longer than {timeout:g} s (core.dagbag_import_timeout) and was killed"
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None, f"the checking process ended with exit code {done.returncode}"
    return answer.get("problem"), answer.get("error")


def check_params_in_child(source: DagSource, dag_id: str, conf: dict[str, Any], *, timeout: float) -> None:
    """ParamValidationError (or NbflowException) unless `conf` passes the DAG's Params, checked in a child
    (forked; spawned from a Jupyter kernel)."""
    from nbflow.runtime.dag_processor import in_kernel
    if in_kernel():
        problem, error = _spawned(source, dag_id, conf, timeout)
    else:
        problem, error = run_in_child(lambda: _params_problem(source, dag_id, conf, timeout), timeout + 1.0)
    if error is not None:
        raise NbflowException(f"DAG {dag_id!r}: cannot check the run's conf: {error}")
    if problem:
        from nbflow.exceptions import ParamValidationError
        raise ParamValidationError(problem)


def _main() -> None:
    """`python -m nbflow.runtime.expansion_process`: check the conf given as JSON on stdin against its DAG's
    Params; print {"problem": ...} or {"error": ...} as JSON."""
    import json
    import sys
    given = json.loads(sys.stdin.read())
    try:
        answer = {"problem": _params_problem(DagSource.from_dict(given["source"]), given["dag_id"], given["conf"],
                                             given["timeout"])}
    except Exception as err:  # noqa: BLE001 - reported to the caller as one line
        answer = {"error": f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"}
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    _main()
