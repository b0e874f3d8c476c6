"""`nbflow tasks xcom DAG_ID TASK_ID`: a task's XCom as a table or JSON, every known secret masked."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from nbflow.runtime import api
from tests.cli.conftest import Cli, raw_rows
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle

TOKEN = "tok-display-1a2b3c4d"
PASSWORD = "pw-display-9f8e7d"

DAG = """
import os
from nbflow import DAG
from nbflow.hooks.base import BaseHook
from nbflow.operators.python import PythonOperator

with DAG("shows", schedule=None):
    PythonOperator(task_id="secretive", python_callable=lambda: {
        "token": "hidden for its name", "rows": 3,
        "dsn": "postgres://etl:" + BaseHook.get_connection("warehouse").password + "@db/wh",
        "note": "slack token is " + os.environ["NBFLOW_VAR_SLACK_TOKEN"]})
    PythonOperator(task_id="plain", python_callable=lambda: [1, 2, 3])
"""


def run_shows(nbflow_env, monkeypatch, executor: str = "local") -> str:
    """The DAG `shows` run once to success by a scheduler with `executor`; its run id."""
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW_VAR_SLACK_TOKEN", TOKEN)
    write_dag(nbflow_env.dags, "shows.py", DAG)
    env = make_env()
    done = Cli(nbflow_env)("connections", "add", "warehouse", "--conn-uri", f"postgres://etl:{PASSWORD}@db/wh")
    assert done.code == 0, done.err
    run_id = api.trigger_dag(env, "shows").run_id
    run_scheduler_until_idle(env, executor=executor)
    assert api.get_run(env, "shows", run_id).state == "success"
    return run_id


@pytest.fixture(params=["local", "sequential"])
def ran(nbflow_env, monkeypatch, request: pytest.FixtureRequest) -> str:
    return run_shows(nbflow_env, monkeypatch, request.param)


def test_json_output_masks_secrets_and_sensitive_fields(nbflow: Cli, ran: str) -> None:
    done = nbflow("tasks", "xcom", "shows", "secretive", "--output", "json")
    assert done.code == 0, done.err
    [entry] = done.json()
    assert (entry["run_id"], entry["key"]) == (ran, "return_value")
    assert entry["value"] == {"token": "***", "rows": 3, "dsn": "postgres://etl:***@db/wh",
                              "note": "slack token is ***"}
    assert TOKEN not in done.out + done.err and PASSWORD not in done.out + done.err


def test_a_metastore_password_is_masked_even_though_the_cli_never_read_the_connection(nbflow: Cli, ran: str) -> None:
    done = nbflow("tasks", "xcom", "shows", "secretive", "--run-id", ran)
    assert done.code == 0, done.err
    assert "postgres://etl:***@db/wh" in done.out and PASSWORD not in done.out


def test_a_value_without_secrets_is_shown_as_is(nbflow: Cli, ran: str) -> None:
    done = nbflow("tasks", "xcom", "shows", "plain", "--run-id", ran)
    assert done.code == 0 and "[1, 2, 3]" in done.out


def test_an_absent_key_is_a_one_line_error(nbflow: Cli, ran: str) -> None:
    done = nbflow("tasks", "xcom", "shows", "plain", "--key", "nope")
    assert done.code == 1
    assert done.error_line == (f"error: task plain of run {ran} of DAG 'shows' pushed no XCom 'nope'; "
                               f"it has not run, or returned nothing")


def test_encrypted_xcoms_are_shown_decrypted_and_masked(nbflow: Cli, nbflow_env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__ENCRYPT_XCOM", "true")
    monkeypatch.setenv("NBFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    run_shows(nbflow_env, monkeypatch)
    [(stored,)] = raw_rows(nbflow_env.home, "SELECT value FROM xcom WHERE task_id = 'secretive'")
    assert stored.startswith("fernet:")
    done = nbflow("tasks", "xcom", "shows", "secretive", "--output", "json")
    assert done.code == 0, done.err
    assert done.json()[0]["value"]["note"] == "slack token is ***"


def test_an_encrypted_xcom_read_with_another_key_is_a_one_line_error_naming_it(nbflow: Cli, nbflow_env,
                                                                               monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__ENCRYPT_XCOM", "true")
    monkeypatch.setenv("NBFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    run_id = run_shows(nbflow_env, monkeypatch)
    done = nbflow("tasks", "xcom", "shows", "plain",
                  extra_env={"NBFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()})
    assert done.code == 1
    assert done.error_line.startswith(f"error: XCom 'return_value' of task plain of run {run_id} of DAG 'shows' "
                                      f"is encrypted and none of the keys in core.fernet_key decrypts it")
