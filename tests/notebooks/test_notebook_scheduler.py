"""Notebook tasks under the scheduler with the local executor: kernels from the warm worker's pool."""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.runtime import api
from nbflow.runtime.xcom_db import DbXComStore
from nbflow.store.keys import TIKey
from nbflow.utils.serialization import deserialize
from tests.conftest import write_dag
from tests.notebooks.conftest import kernels_of, outputs_text, read_notebook, write_notebook
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle, wait_for

pytestmark = pytest.mark.timeout(180)

PIPELINE = """
from nbflow import DAG
from nbflow.operators.notebook import NotebookOperator

with DAG("nb_pipeline", schedule=None, default_args={{"retries": 1, "retry_delay": 0}}):
    extract = NotebookOperator(task_id="extract", input_nb="extract.ipynb", parameters={{"day": "{{{{ ds }}}}"}})
    transform = NotebookOperator(task_id="transform", input_nb="transform.ipynb",
                                 parameters={{"path": extract.output["path"],
                                             "count": "{{{{ ti.xcom_pull(task_ids='extract')['count'] }}}}"}})
    report = NotebookOperator(task_id="report", input_nb="report.ipynb", parameters={{"rows": transform.output["rows"]}})
    extract >> transform >> report

with DAG("nb_broken", schedule=None):
    NotebookOperator(task_id="explode", input_nb="broken.ipynb")
"""

RECORD = "from nbflow.notebook import record\nimport os\nrecord('pid', os.getpid())\n"


@pytest.fixture
def env(nb_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nb_env


def test_notebook_pipeline_under_the_scheduler(env, tmp_path: Path) -> None:
    marker = tmp_path / "transform-failed-once"
    write_notebook(env.dags / "extract.ipynb", RECORD + "record('path', f'/data/{day}.csv')\nrecord('count', 3)",
                   parameters="day = ''")
    write_notebook(env.dags / "transform.ipynb", RECORD + "from pathlib import Path\n"
                   f"marker = Path({str(marker)!r})\n"
                   "if not marker.exists():\n    marker.touch()\n    raise RuntimeError('flaky on purpose')\n"
                   "print('transforming', path)\nrecord('rows', int(count) * 2)",
                   parameters="path = ''\ncount = '0'")
    write_notebook(env.dags / "report.ipynb", RECORD + "print(f'report of {rows} rows')\nrecord('rows', rows)",
                   parameters="rows = 0")
    write_notebook(env.dags / "broken.ipynb", "x = 1", "x / 0")
    write_dag(env.dags, "pipeline.py", PIPELINE.format())
    environment = make_env()
    run = api.trigger_dag(environment, "nb_pipeline")
    broken = api.trigger_dag(environment, "nb_broken")
    run_scheduler_until_idle(environment)

    assert api.get_run(environment, "nb_pipeline", run.run_id).state == "success"
    xcoms = DbXComStore(environment.sessions)

    def xcom(task_id: str) -> dict:
        return deserialize(xcoms.get(TIKey("nb_pipeline", task_id, run.run_id, -1), "return_value"))

    day = run.logical_date.strftime("%Y-%m-%d")
    assert xcom("extract")["path"] == f"/data/{day}.csv"
    assert xcom("transform")["rows"] == 6 and xcom("report")["rows"] == 6
    pids = [xcom(t)["pid"] for t in ("extract", "transform", "report")]
    assert len(set(pids)) == 3  # one fresh kernel per notebook run, even for the retry
    # the retry wrote a second executed notebook next to the first
    transform = api.task_states(environment, "nb_pipeline", run.run_id)
    assert {r.task_id: r.try_number for r in transform}["transform"] == 2
    folder = Path(xcom("transform")["output_notebook"]).parent
    assert sorted(p.name for p in folder.iterdir()) == ["attempt=1.ipynb", "attempt=2.ipynb"]
    assert "flaky on purpose" in outputs_text(read_notebook(folder / "attempt=1.ipynb"))
    log = api.log_path(environment, "nb_pipeline", run.run_id, "transform", 2).read_text()
    assert f"transforming /data/{day}.csv" in log and "pre-started" in log  # a kernel from the worker's pool
    assert "report of 6 rows" in api.log_path(environment, "nb_pipeline", run.run_id, "report", 1).read_text()

    # a failing notebook names its cell, under the scheduler as in process
    assert api.get_run(environment, "nb_broken", broken.run_id).state == "failed"
    failed = api.log_path(environment, "nb_broken", broken.run_id, "explode", 1).read_text()
    assert f"notebook {env.dags / 'broken.ipynb'} failed at cell 1 (In [2]): ZeroDivisionError: division by zero" \
        in failed

    # the worker stopped every kernel it started, pooled or used, when the scheduler ended
    wait_for(lambda: not kernels_of(env.home), timeout=30)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
