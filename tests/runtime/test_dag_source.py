"""A DAG whose source is kernel cells (no file anywhere) runs in the real local worker: the cells travel
with each workload."""
from __future__ import annotations

import pytest

from nbflow.runtime import api
from nbflow.runtime.dag_source import DagSource, dags_from_cells
from nbflow.runtime.magic_cells import MagicCell
from nbflow.runtime.notebook_dags import cells_to_json
from nbflow.runtime.workload import Workload
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle

CELLS = [MagicCell("dag", "from_cells"),
         MagicCell("setup", "", "import math"),
         MagicCell("task", "root", "math.isqrt(49)"),
         MagicCell("task", "double --upstream root", "print('doubling', root)\nroot * 2"),
         MagicCell("bash_task", "shout --upstream double", "echo \"double is {{ ti.xcom_pull(task_ids='double') }}\"")]


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


def test_a_workload_from_kernel_cells_runs_in_the_local_worker(env) -> None:
    assert list(env.dags.iterdir()) == []  # the worker's dags folder has nothing to offer
    source = DagSource.for_cells("from_cells", cells_to_json(CELLS, base_folder=str(env.dags.parent)))
    environment = make_env()
    environment.dagbag.add_source(source)
    run = api.trigger_dag(environment, "from_cells")
    scheduler = run_scheduler_until_idle(environment, executor="local")
    assert scheduler.executor.name == "local"
    assert api.get_run(environment, "from_cells", run.run_id).state == "success"
    assert {ti.task_id: ti.state for ti in api.task_states(environment, "from_cells", run.run_id)} == \
        {"root": "success", "double": "success", "shout": "success"}
    assert api.get_xcom(environment, "from_cells", "double", run.run_id).value == 14
    assert "doubling 7" in api.log_path(environment, "from_cells", run.run_id, "double", None).read_text()
    assert "double is 14" in api.log_path(environment, "from_cells", run.run_id, "shout", None).read_text()


def test_a_workload_carries_the_cells_through_the_worker_protocol() -> None:
    source = DagSource.for_cells("from_cells", cells_to_json(CELLS))
    workload = Workload("from_cells", "double", "manual__1", -1, 1, source)
    back = Workload.from_json(workload.to_json())
    assert back == workload and back.source.kind == "cells" and back.fileloc == "kernel:from_cells"
    assert sorted(dags_from_cells(back.source)["from_cells"].task_dict) == ["double", "root", "shout"]
