"""Before `nbflow db init`, a command about one DAG parses the files that name it first and stops once it is
found: a slow file elsewhere in the folder is never imported (it writes a marker file first thing at import,
then sleeps 30 s under a 60 s import timeout). Only a DAG no such file defines costs a parse of the rest,
so the error can still name the known DAG ids."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import write_dag

TIMEOUT_60 = {"NBFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60"}
WANTED = """
    from datetime import datetime
    from nbflow import DAG
    from nbflow.operators.empty import EmptyOperator
    with DAG("wanted_dag", schedule="@daily", start_date=datetime(2025, 1, 1)):
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""
SLOW = """
    open({marker!r}, "w").write("imported")
    import time
    time.sleep(30)
    from nbflow import DAG
    from nbflow.operators.empty import EmptyOperator
    with DAG("slow_dag"):
        EmptyOperator(task_id="a")
"""
OTHER = """
    from nbflow import DAG
    from nbflow.operators.empty import EmptyOperator
    with DAG("other_dag"):
        EmptyOperator(task_id="a")
"""


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file the slow DAG file writes as soon as anything imports it."""
    return tmp_path / "slow_file_ran.txt"


@pytest.fixture
def folder(nbflow: Cli, marker: Path) -> Cli:
    """No metadata database; the wanted DAG's file beside a slow file that does not name it."""
    write_dag(nbflow.env.dags, "a_slow.py", SLOW.format(marker=str(marker)))  # sorts first
    write_dag(nbflow.env.dags, "b_wanted.py", WANTED)
    return nbflow


def test_dags_test_finds_its_dag_without_importing_a_slow_file_that_does_not_name_it(
        folder: Cli, marker: Path) -> None:
    done = folder("dags", "test", "wanted_dag", extra_env=TIMEOUT_60)
    assert done.code == 0, done.err
    assert "success" in done.err.splitlines()[-1]
    assert not marker.exists()


def test_tasks_test_finds_its_dag_without_importing_a_slow_file_that_does_not_name_it(
        folder: Cli, marker: Path) -> None:
    done = folder("tasks", "test", "wanted_dag", "a", extra_env=TIMEOUT_60)
    assert done.code == 0, done.err
    assert "task a: success" in done.err
    assert not marker.exists()


def test_dags_test_of_an_unknown_dag_still_names_the_known_ones(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "wanted.py", WANTED)
    write_dag(nbflow.env.dags, "other.py", OTHER)
    write_dag(nbflow.env.dags, "broken.py", "# nbflow dag\nraise RuntimeError('broken at import')\n")
    done = nbflow("dags", "test", "NOSUCH", extra_env=TIMEOUT_60)
    assert done.code == 1
    assert "'NOSUCH' not found" in done.error_line
    assert "other_dag, wanted_dag" in done.error_line and "1 file(s) failed to import" in done.error_line
