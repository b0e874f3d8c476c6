"""`%xcom` shows a task's XCom for reading: every known secret in it is masked, as in the CLI."""
from __future__ import annotations

import pytest

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.jupyter.conftest import Shell
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle

API_KEY = "apikey-xcom-5e6f7a8b"

DAG = """
import os
from nbflow import DAG
from nbflow.operators.python import PythonOperator

with DAG("leaky", schedule=None):
    PythonOperator(task_id="return_key", python_callable=lambda: {
        "api_key": "shown as *** for its name", "note": "the key is " + os.environ["NBFLOW_VAR_API_KEY"]})
"""


def test_xcom_magic_masks_a_returned_secret(ipython: Shell, nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_VAR_API_KEY", API_KEY)
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    write_dag(nbflow_env.dags, "leaky.py", DAG)
    env = make_env()
    run_id = api.trigger_dag(env, "leaky").run_id
    run_scheduler_until_idle(env, executor="sequential")
    assert api.get_run(env, "leaky", run_id).state == "success"
    assert ipython.ok("%xcom leaky return_key").value == {"api_key": "***", "note": "the key is ***"}
    real = api.get_xcom(env, "leaky", "return_key", masked=False).value
    assert real["note"] == f"the key is {API_KEY}"  # what a downstream task reads is the value itself
