"""`nbflow dags list | list-import-errors | show | test`, run as real processes on real DAG files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import write_dag
from tests.services import require_service

ETL = """
    from datetime import datetime, timedelta
    from nbflow import DAG
    from nbflow.operators.python import PythonOperator
    from nbflow.sdk import TaskGroup

    def extract(ti):
        print("extracting")
        ti.xcom_push(key="rows", value=3)

    def load(ti, params, ds):
        print(f"loaded {ti.xcom_pull(task_ids='extract', key='rows')} rows for {ds}, day={params['day']}")

    with DAG("etl", schedule="@daily", start_date=datetime(2025, 1, 1), tags=["team", "core"],
             params={"day": 1}, default_args={"retry_delay": timedelta(seconds=0.01)}):
        e = PythonOperator(task_id="extract", python_callable=extract)
        with TaskGroup("store"):
            l = PythonOperator(task_id="load", python_callable=load)
        e >> l
"""

FAILING = """
    from datetime import datetime
    from nbflow import DAG
    from nbflow.operators.python import PythonOperator

    def boom():
        raise ValueError("the warehouse is on fire")

    with DAG("failing", start_date=datetime(2025, 1, 1)):
        PythonOperator(task_id="boom", python_callable=boom) >> PythonOperator(task_id="after", python_callable=print)
"""


@pytest.fixture
def etl(nbflow: Cli) -> Path:
    return write_dag(nbflow.env.dags, "etl.py", ETL)


# -- list ---------------------------------------------------------------------------------------------

def test_list_as_json_gives_id_file_schedule_tags_paused(nbflow: Cli, etl: Path) -> None:
    write_dag(nbflow.env.dags, "sub/other.py", """
        from nbflow import DAG
        dag = DAG("other", schedule=None)
    """)
    done = nbflow("dags", "list", "--output", "json")
    assert done.code == 0
    assert done.json() == [
        {"dag_id": "etl", "file": "etl.py", "schedule": "@daily", "tags": ["core", "team"], "paused": True},
        {"dag_id": "other", "file": "sub/other.py", "schedule": None, "tags": [], "paused": True},
    ]


def test_list_shows_the_pause_flag_recorded_in_the_database(nbflow: Cli, etl: Path) -> None:
    assert nbflow("db", "init").code == 0
    assert nbflow("dags", "unpause", "etl").code == 0
    rows = {row["dag_id"]: row["paused"] for row in nbflow("dags", "list", "--output", "json").json()}
    assert rows == {"etl": False}


def test_list_as_table(nbflow: Cli, etl: Path) -> None:
    done = nbflow("dags", "list")
    header, rule, row = done.out.splitlines()
    assert header.split() == ["dag_id", "file", "schedule", "tags", "paused"]
    assert set(rule) <= {"-", " "}
    assert row.split() == ["etl", "etl.py", "@daily", "core,", "team", "true"]


def test_list_warns_on_stderr_about_import_errors(nbflow: Cli, etl: Path) -> None:
    write_dag(nbflow.env.dags, "bad.py", "from nbflow import DAG\n1/0\n")
    done = nbflow("dags", "list", "-o", "json")
    assert [d["dag_id"] for d in done.json()] == ["etl"]
    assert "1 file(s) failed to import" in done.err


def test_list_import_errors_shows_file_and_error_and_exits_0(nbflow: Cli, etl: Path) -> None:
    bad = write_dag(nbflow.env.dags, "bad.py", "from nbflow import DAG\n1/0\n")
    done = nbflow("dags", "list-import-errors")
    assert done.code == 0
    assert done.out.splitlines()[2].split(None, 1) == ["bad.py", f"{bad}:2: ZeroDivisionError: division by zero"]
    [entry] = nbflow("dags", "list-import-errors", "--output", "json").json()
    assert entry["file"] == "bad.py" and "Traceback" in entry["error"]


def test_import_timeout_comes_from_the_environment(nbflow: Cli) -> None:
    slow = write_dag(nbflow.env.dags, "slow.py", "import time\nfrom nbflow import DAG\ntime.sleep(60)\n")
    done = nbflow("dags", "list-import-errors", "-o", "json", extra_env={"NBFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "1"})
    [entry] = done.json()
    assert entry["error"].startswith(f"{slow}:3: DagImportTimeout: the file took longer than 1 s")


# -- show ---------------------------------------------------------------------------------------------

def test_show_prints_dot(nbflow: Cli, etl: Path) -> None:
    done = nbflow("dags", "show", "etl")
    assert done.code == 0 and done.out.startswith('digraph "etl" {')
    assert "cluster_store" in done.out and "n_extract ->" in done.out


def test_show_saves_dot_text(nbflow: Cli, etl: Path, tmp_path: Path) -> None:
    target = tmp_path / "etl.dot"
    done = nbflow("dags", "show", "etl", "--save", str(target))
    assert done.code == 0 and done.out == ""
    assert target.read_text().startswith('digraph "etl"')


def test_show_saves_svg_drawn_by_dot(nbflow: Cli, etl: Path, tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        require_service("graphviz", "`dot` is not installed; run `make sysdeps`")
    target = tmp_path / "etl.svg"
    done = nbflow("dags", "show", "etl", "--save", str(target))
    assert done.code == 0, done.err
    assert b"<svg" in target.read_bytes() and b'id="n_extract"' in target.read_bytes()


def test_show_rejects_an_unknown_picture_format(nbflow: Cli, etl: Path) -> None:
    done = nbflow("dags", "show", "etl", "--save", "etl.gif")
    assert done.code == 1 and done.error_line.startswith("error: --save etl.gif: cannot tell the format from '.gif'")


# -- test -----------------------------------------------------------------------------------------------

def test_dag_test_runs_tasks_in_order_prints_progress_summary_and_writes_logs(nbflow: Cli, etl: Path) -> None:
    done = nbflow("dags", "test", "etl", "2025-03-04", "--conf", '{"day": 7}')
    assert done.code == 0, done.err
    progress = [line.split() for line in done.out.splitlines() if line.split()[:1] in (["extract"], ["store.load"])]
    assert [p[:2] for p in progress[:2]] == [["extract", "success"], ["store.load", "success"]]
    assert progress[0][-2:] == ["try", "1"]
    assert "loaded 3 rows for 2025-03-04, day=7" in done.out  # task output reaches the terminal
    assert "task_id" in done.out and "run manual__2025-03-04T00:00:00+00:00: success" in done.err
    log = (nbflow.env.home / "logs" / "dag_id=etl" / "run_id=manual__2025-03-04T00_00_00+00_00"
           / "task_id=store.load" / "attempt=1.log")
    assert "loaded 3 rows for 2025-03-04, day=7" in log.read_text()


def test_dag_test_of_a_failing_dag_exits_1_naming_run_and_task(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "failing.py", FAILING)
    done = nbflow("dags", "test", "failing", "2025-01-02")
    assert done.code == 1
    assert done.error_line == ("error: run manual__2025-01-02T00:00:00+00:00 failed: task boom failed: "
                               "ValueError: the warehouse is on fire")
    assert "Traceback" in done.out  # the task's own traceback is in its log, echoed to the terminal
    assert "after" in done.out and "upstream_failed" in done.out


def test_dag_test_retries_with_the_delay_and_prints_each_try(nbflow: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    write_dag(nbflow.env.dags, "flaky.py", f"""
        from datetime import datetime
        from pathlib import Path
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def flaky():
            marker = Path({str(marker)!r})
            if not marker.exists():
                marker.write_text("once")
                raise RuntimeError("first try fails")

        with DAG("flaky", start_date=datetime(2025, 1, 1), default_args={{"retries": 2, "retry_delay": 0.05}}):
            PythonOperator(task_id="flaky", python_callable=flaky)
    """)
    done = nbflow("dags", "test", "flaky")
    assert done.code == 0, done.err
    lines = [line.split() for line in done.out.splitlines() if line.startswith("flaky ")]
    assert [(line[1], line[-1]) for line in lines[:2]] == [("up_for_retry", "1"), ("success", "2")]


def test_dag_test_task_regex_runs_only_matching_tasks(nbflow: Cli, etl: Path) -> None:
    done = nbflow("dags", "test", "etl", "--task-regex", "^store")
    assert done.code == 0, done.err
    assert "loaded None rows" in done.out and "extracting" not in done.out
    bad = nbflow("dags", "test", "etl", "--task-regex", "nothing_matches")
    assert bad.code == 1 and bad.error_line.startswith("error: --task-regex 'nothing_matches' matches no task")


def test_dag_test_bad_conf_is_one_line_saying_where_the_json_broke(nbflow: Cli, etl: Path) -> None:
    done = nbflow("dags", "test", "etl", "--conf", '{"day": 3')
    assert done.code == 1
    assert done.err == ("error: --conf is not valid JSON (line 1, column 10: expecting ','); "
                        "pass one JSON object, e.g. '{\"day\": 3}'\n")
    listed = nbflow("dags", "test", "etl", "--conf", "[1, 2]")
    assert listed.error_line.startswith("error: --conf must be a JSON object, got a list")


def test_dag_test_bad_param_in_conf_fails_the_run(nbflow: Cli, tmp_path: Path) -> None:
    write_dag(nbflow.env.dags, "typed.py", """
        from datetime import datetime
        from nbflow import DAG
        from nbflow.models import Param
        from nbflow.operators.empty import EmptyOperator
        with DAG("typed", start_date=datetime(2025, 1, 1), params={"n": Param(1, type="integer")}):
            EmptyOperator(task_id="only")
    """)
    done = nbflow("dags", "test", "typed", "--conf", '{"n": "many"}')
    assert done.code == 1 and done.error_line.startswith("error: run manual__") and "'n'" in done.error_line


def test_dag_test_bad_date_is_a_clear_error(nbflow: Cli, etl: Path) -> None:
    done = nbflow("dags", "test", "etl", "next tuesday")
    assert done.code == 1
    assert done.error_line == ("error: logical date 'next tuesday' is not a date; use YYYY-MM-DD or an ISO 8601 "
                               "timestamp, e.g. 2025-01-02 or 2025-01-02T06:00:00+00:00")


def test_unknown_dag_lists_the_known_ones(nbflow: Cli, etl: Path) -> None:
    done = nbflow("dags", "test", "etx")
    assert done.code == 1
    assert done.err == f"error: DAG 'etx' not found in {nbflow.env.dags}; known: etl\n"


def test_unknown_dag_whose_file_failed_shows_that_error_instead(nbflow: Cli) -> None:
    path = write_dag(nbflow.env.dags, "broken.py", """
        from nbflow import DAG
        dag = DAG("broken", schedule="@sometimes")
    """)
    done = nbflow("dags", "show", "broken")
    assert done.code == 1
    assert done.error_line.startswith(f"error: DAG 'broken' could not be loaded: {path}:2: InvalidScheduleError: ")


def test_missing_dags_folder_is_named(nbflow: Cli) -> None:
    done = nbflow("dags", "test", "x", extra_env={"NBFLOW__CORE__DAGS_FOLDER": "/no/such/folder"})
    assert done.code == 1 and done.error_line.startswith("error: the dags folder /no/such/folder does not exist")
    listed = nbflow("dags", "list", "-o", "json", extra_env={"NBFLOW__CORE__DAGS_FOLDER": "/no/such/folder"})
    assert listed.code == 0 and json.loads(listed.out) == []
