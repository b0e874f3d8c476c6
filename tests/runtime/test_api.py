"""The door `nbflow.runtime.api` called directly, as the magics and the web will: real DAG files, real SQLite."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from nbflow.exceptions import (
    DagNotFound,
    DagRunNotFound,
    DagsFolderNotFound,
    DatabaseNotReady,
    NoDagRunYet,
    TaskInstanceNotFound,
    TaskInstanceNotRunnable,
    TaskNotFound,
    XComNotFound,
)
from nbflow.configuration import load_config
from nbflow.runtime import api
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env

SECRET = "door-test-s3cr3t-9d2f"

ETL = f"""
from datetime import datetime
from nbflow import DAG
from nbflow.decorators import task

with DAG("etl", schedule="@daily", start_date=datetime(2025, 1, 1), catchup=False, tags=["door"]):
    @task
    def extract():
        print("connecting with {SECRET}")
        return {{"rows": 3}}

    @task
    def load(data):
        return data["rows"] * 2

    load(extract())
"""

BROKEN = """
from nbflow import DAG
dag = DAG("broken", schedule="@sometimes")
"""

D1 = datetime(2025, 3, 1, tzinfo=timezone.utc)
D2 = datetime(2025, 3, 2, tzinfo=timezone.utc)


@pytest.fixture
def env(nbflow_env) -> api.Environment:
    write_dag(nbflow_env.dags, "etl.py", ETL)
    return make_env()


def run_all(env: api.Environment, run_id: str) -> None:
    for task_id in ("extract", "load"):
        assert api.run_task_instance(env, "etl", task_id, run_id).state == "success"


def test_trigger_then_list_runs_shows_the_queued_run(env) -> None:
    run = api.trigger_dag(env, "etl", conf={"day": 3}, logical_date=D1)
    runs = api.list_runs(env, "etl")
    assert [(r.run_id, r.state, r.conf) for r in runs] == [(run.run_id, "queued", {"day": 3})]
    assert {row.task_id: row.state for row in api.task_states(env, "etl", run.run_id)} == {"extract": None,
                                                                                          "load": None}


def test_find_run_by_logical_date_when_the_reference_is_not_a_run_id(env) -> None:
    run = api.trigger_dag(env, "etl", logical_date=D1)
    assert api.find_run(env, "etl", run_id="2025-03-01", logical_date=D1) == run
    assert api.find_run(env, "etl", run_id="nope", logical_date=D2) is None


def test_pause_and_unpause_show_in_list_dags(env) -> None:
    api.set_paused(env, "etl", True)
    assert [d.paused for d in api.list_dags(env).dags] == [True]
    api.set_paused(env, "etl", False)
    assert [d.paused for d in api.list_dags(env).dags] == [False]


def test_list_dags_gives_schedule_tags_and_file_relative_to_the_dags_folder(env, nbflow_env) -> None:
    listing = api.list_dags(env)
    (etl,) = listing.dags
    assert (etl.dag_id, etl.file, etl.schedule, etl.tags) == ("etl", "etl.py", "@daily", ("door",))
    assert etl.fileloc == str(nbflow_env.dags / "etl.py") and listing.import_error_count == 0


def test_list_import_errors_names_the_broken_file_and_its_error(nbflow_env) -> None:
    write_dag(nbflow_env.dags, "broken.py", BROKEN)
    env = api.Environment.from_config(load_config())
    (error,) = api.list_import_errors(env)
    assert error.file == "broken.py" and error.summary.startswith(f"{nbflow_env.dags / 'broken.py'}:2: "
                                                                  f"InvalidScheduleError: ")
    assert api.list_dags(env).import_error_count == 1


def test_clear_resets_the_task_and_its_downstream(env) -> None:
    run = api.trigger_dag(env, "etl", logical_date=D1)
    run_all(env, run.run_id)
    assert api.clear_tasks(env, "etl", run.run_id, ["extract"]) == 2
    assert {r.task_id: r.state for r in api.task_states(env, "etl", run.run_id)} == {"extract": None, "load": None}


def test_run_task_instance_records_success_and_its_xcom_is_readable(env) -> None:
    run = api.trigger_dag(env, "etl", logical_date=D1)
    result = api.run_task_instance(env, "etl", "extract", run.run_id)
    assert (result.state, result.try_number, result.succeeded) == ("success", 1, True)
    xcom = api.get_xcom(env, "etl", "extract", run.run_id)
    assert (xcom.run_id, xcom.key, xcom.value) == (run.run_id, "return_value", {"rows": 3})


def test_run_task_instance_refuses_one_that_already_ran(env) -> None:
    run = api.trigger_dag(env, "etl", logical_date=D1)
    api.run_task_instance(env, "etl", "extract", run.run_id)
    with pytest.raises(TaskInstanceNotRunnable, match=r"task extract of run \S+ is success; clear it first"):
        api.run_task_instance(env, "etl", "extract", run.run_id)


def test_get_xcom_without_run_id_reads_the_latest_run(env) -> None:
    first = api.trigger_dag(env, "etl", logical_date=D1)
    latest = api.trigger_dag(env, "etl", logical_date=D2)
    run_all(env, first.run_id)
    with pytest.raises(XComNotFound, match=re.escape(f"task load of run {latest.run_id} of DAG 'etl' pushed no XCom")):
        api.get_xcom(env, "etl", "load")  # the latest run has not run yet
    run_all(env, latest.run_id)
    assert api.get_xcom(env, "etl", "load").run_id == latest.run_id
    assert api.get_xcom(env, "etl", "load").value == 6


def test_unknown_dag_raises_dag_not_found_naming_it(env) -> None:
    with pytest.raises(DagNotFound, match="DAG 'etx' not found in .*; known: etl"):
        api.trigger_dag(env, "etx")
    with pytest.raises(DagNotFound, match="'etx'"):
        api.get_xcom(env, "etx", "load")


def test_unknown_run_raises_dag_run_not_found_naming_it(env) -> None:
    with pytest.raises(DagRunNotFound, match="DAG 'etl' has no run 'nope'"):
        api.run_task_instance(env, "etl", "extract", "nope")
    with pytest.raises(DagRunNotFound, match="DAG 'etl' has no run 'nope'"):
        api.get_xcom(env, "etl", "extract", "nope")
    with pytest.raises(NoDagRunYet, match="DAG 'etl' has no runs yet"):
        api.get_xcom(env, "etl", "extract")


def test_unknown_task_raises_naming_it(env) -> None:
    run = api.trigger_dag(env, "etl", logical_date=D1)
    with pytest.raises(TaskNotFound, match="'nope'"):
        api.run_task_instance(env, "etl", "nope", run.run_id)
    with pytest.raises(TaskInstanceNotFound, match=re.escape(f"run {run.run_id} of etl has no task instance nope")):
        api.get_xcom(env, "etl", "nope", run.run_id)
    with pytest.raises(TaskInstanceNotFound, match="has no task instance nope"):
        api.read_log(env, "etl", run.run_id, "nope")


def test_read_log_masks_secrets_and_reads_on_from_an_offset(env) -> None:
    from nbflow.utils.masking import masker
    run = api.trigger_dag(env, "etl", logical_date=D1)
    api.run_task_instance(env, "etl", "extract", run.run_id)
    assert SECRET in api.read_log(env, "etl", run.run_id, "extract").text  # not known as a secret yet
    masker.add(SECRET)
    chunk = api.read_log(env, "etl", run.run_id, "extract")
    assert (chunk.exists, chunk.try_number) == (True, 1)
    assert SECRET not in chunk.text and "connecting with ***" in chunk.text
    assert api.read_log(env, "etl", run.run_id, "extract", offset=chunk.next_offset).text == ""
    assert api.attempt_ended(env, "etl", run.run_id, "extract")


def test_dag_and_task_tests_need_no_database(nbflow_env) -> None:
    write_dag(nbflow_env.dags, "etl.py", ETL)
    env = api.Environment.from_config(load_config())
    run = api.new_test_run(env, "etl", logical_date=D1)
    assert api.run_dag_test(env, run).state == "success"
    assert api.run_task_test(env, "etl", "extract").state == "success"
    assert not (nbflow_env.home / "nbflow.db").exists()


def test_require_database_before_init_says_to_init(nbflow_env) -> None:
    env = api.Environment.from_config(load_config())
    with pytest.raises(DatabaseNotReady, match="is unreachable: no database file at .*`nbflow db init` creates it"):
        api.require_database(env)
    api.init_database(env)
    api.require_database(env)


def test_missing_dags_folder_is_named(nbflow_env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__DAGS_FOLDER", "/no/such/folder")
    env = api.Environment.from_config(load_config())
    assert api.list_dags(env).dags == ()
    with pytest.raises(DagsFolderNotFound, match="the dags folder /no/such/folder does not exist"):
        api.get_dag(env, "etl")
