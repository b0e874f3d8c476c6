"""A real `nbflow scheduler` beside DAG files that exit, block SIGALRM and hang, or are slow: it parses them
only in the DAG processor's children, so it keeps scheduling and completing the good DAG."""
from __future__ import annotations


import pytest

from nbflow.runtime import api
from tests.cli.test_hostile_dag_files import GOOD, HOSTILE
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, start_nbflow_scheduler, stop_scheduler, wait_for

MAPPED = """
    from nbflow import DAG
    from nbflow.decorators import task
    with DAG("mapped", schedule=None):
        @task
        def numbers():
            return [1, 2, 3]
        @task
        def double(n):
            return 2 * n
        double.expand(n=numbers())
"""


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    monkeypatch.setenv("NBFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "1")
    assert api.init_database(make_env()).at_head
    return nbflow_env


def test_the_scheduler_completes_a_good_dag_beside_exiting_hanging_and_slow_files(env) -> None:
    write_dag(env.dags, "good.py", GOOD)
    write_dag(env.dags, "exits.py", "# nbflow dag\n" + HOSTILE["os_exit"][0])
    write_dag(env.dags, "hangs.py", "# nbflow dag\n" + HOSTILE["sigalrm_blocked"][0])
    write_dag(env.dags, "slow.py", "import time  # nbflow dag\ntime.sleep(20)\n")
    write_dag(env.dags, "mapped.py", MAPPED)
    stderr = env.home.parent / "scheduler.err"
    environment = make_env()
    process = start_nbflow_scheduler(stderr)
    try:
        for dag_id in ("good", "mapped", "good"):
            run_id = api.trigger_dag(environment, dag_id).run_id
            state = wait_for(lambda: api.get_run(environment, dag_id, run_id).state in ("success", "failed")
                             and api.get_run(environment, dag_id, run_id).state, timeout=90)
            assert state == "success", stderr.read_text()
        assert process.poll() is None
        mapped_run = api.list_runs(environment, "mapped")[0].run_id
        assert len([ti for ti in api.task_states(environment, "mapped", mapped_run) if ti.task_id == "double"]) == 3
        log = stderr.read_text()
        assert "exits.py" in log and "hangs.py" in log and "slow.py" in log
    finally:
        stop_scheduler(process)
