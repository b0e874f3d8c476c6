"""Under `dags test` (no scheduler, no database) a TriggerDagRunOperator runs the target DAG at once, here."""
from __future__ import annotations

import json

from nbflow.configuration import load_config
from nbflow.runtime import api
from tests.conftest import write_dag
from tests.sensors.test_cross_dag import PAIR


def test_dags_test_of_the_controller_runs_the_target_in_process_with_its_conf(nbflow_env, tmp_path) -> None:
    out = tmp_path / "conf.json"
    write_dag(nbflow_env.dags, "pair.py", PAIR.format(out=str(out), target="target", fail=False))
    env = api.Environment.from_config(load_config())
    result = api.run_dag_test(env, api.new_test_run(env, "controller"))
    assert result.state == "success"
    assert json.loads(out.read_text())["fail"] is False
    assert not (nbflow_env.home / "nbflow.db").exists()


def test_dags_test_of_the_controller_fails_when_the_target_fails(nbflow_env, tmp_path) -> None:
    write_dag(nbflow_env.dags, "pair.py", PAIR.format(out=str(tmp_path / "conf.json"), target="target", fail=True))
    env = api.Environment.from_config(load_config())
    result = api.run_dag_test(env, api.new_test_run(env, "controller"))
    assert result.state == "failed" and result.failed_task == "trigger"
