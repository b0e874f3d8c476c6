"""Commands about one DAG import no other DAG file in their own process: beside a file that exits at import
and one that blocks SIGALRM and sleeps, `dags test|pause|unpause|backfill` and `tasks test|run|clear` about a
healthy DAG succeed, and the hostile files ran only in the DAG processor's children (each writes its PID to a
marker file before it misbehaves: no line is the command's own PID). A DAG whose own file is broken is the
stored import error, one line naming the file, exit 1."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli, Done
from tests.cli.test_hostile_dag_files import FAST, GOOD
from tests.conftest import write_dag

WRITE_PID = "import os  # nbflow dag\nopen({marker!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
EXITING = WRITE_PID + "os._exit(3)\n"
SLEEPING = WRITE_PID + ("import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGALRM}})\n"
                        "while True:\n    time.sleep(1)\n")
DOOMED = """from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
with DAG("doomed", schedule=None):
    EmptyOperator(task_id="a")
"""


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Where a hostile file writes the PID of each process that imports it."""
    return tmp_path / "imported_by.txt"


def hostile_folder(cli: Cli, marker: Path) -> None:
    write_dag(cli.env.dags, "good.py", GOOD)
    write_dag(cli.env.dags, "exiting.py", EXITING.format(marker=str(marker)))
    write_dag(cli.env.dags, "sleeping.py", SLEEPING.format(marker=str(marker)))


def importers(marker: Path) -> list[int]:
    return [int(pid) for pid in marker.read_text().split()] if marker.exists() else []


def assert_not_imported_by(done: Done, marker: Path) -> None:
    assert done.pid and done.pid not in importers(marker)


def assert_parsed_in_children_only(cli: Cli, done: Done, marker: Path) -> None:
    """With a database, the DAG processor parsed the whole folder (both hostile files), in children; before
    `db init` a lookup may skip files that do not name the DAG. Either way none ran in the command's process."""
    if (cli.env.home / "nbflow.db").exists():
        assert len(importers(marker)) >= 2
    assert_not_imported_by(done, marker)


@pytest.fixture(params=["before_db_init", "after_db_init"])
def cli(request: pytest.FixtureRequest, nbflow: Cli) -> Cli:
    """The CLI without a metadata database (the folder is parsed in children, nothing stored) and with one."""
    if request.param == "after_db_init":
        assert nbflow("db", "init").code == 0
    return nbflow


def test_dags_test_runs_the_good_dag_without_importing_the_hostile_files(cli: Cli, marker: Path) -> None:
    hostile_folder(cli, marker)
    done = cli("dags", "test", "good", extra_env=FAST)
    assert done.code == 0, done.err
    assert "success" in done.err.splitlines()[-1]
    assert_parsed_in_children_only(cli, done, marker)


def test_tasks_test_runs_the_good_task_without_importing_the_hostile_files(cli: Cli, marker: Path) -> None:
    hostile_folder(cli, marker)
    done = cli("tasks", "test", "good", "a", extra_env=FAST)
    assert done.code == 0, done.err
    assert "task a: success" in done.err
    assert_parsed_in_children_only(cli, done, marker)


def triggered(initialised: Cli, marker: Path) -> str:
    hostile_folder(initialised, marker)
    done = initialised("dags", "trigger", "good", "-r", "r1", extra_env=FAST)
    assert done.code == 0, done.err
    assert_not_imported_by(done, marker)
    return "r1"


def test_tasks_run_records_the_good_task_without_importing_the_hostile_files(initialised: Cli,
                                                                             marker: Path) -> None:
    run_id = triggered(initialised, marker)
    done = initialised("tasks", "run", "good", "a", run_id, extra_env=FAST)
    assert done.code == 0, done.err
    states = initialised("tasks", "states-for-dag-run", "good", run_id, "-o", "json").json()
    assert {row["task_id"]: row["state"] for row in states} == {"a": "success", "b": None}
    assert_not_imported_by(done, marker)


def test_tasks_clear_selects_downstream_tasks_without_importing_any_dag_file(initialised: Cli,
                                                                            marker: Path) -> None:
    run_id = triggered(initialised, marker)
    assert initialised("tasks", "run", "good", "a", run_id, extra_env=FAST).code == 0
    done = initialised("tasks", "clear", "good", run_id, "-t", "^a$", extra_env=FAST)
    assert done.code == 0, done.err
    assert "cleared 2 task instance(s)" in done.err  # a and, downstream of it, b
    states = initialised("tasks", "states-for-dag-run", "good", run_id, "-o", "json").json()
    assert {row["task_id"]: row["state"] for row in states} == {"a": None, "b": None}
    assert_not_imported_by(done, marker)


@pytest.mark.parametrize("verb, paused", [("pause", True), ("unpause", False)])
def test_pause_and_unpause_record_the_flag_without_importing_the_hostile_files(initialised: Cli, marker: Path,
                                                                              verb: str, paused: bool) -> None:
    hostile_folder(initialised, marker)
    done = initialised("dags", verb, "good", extra_env=FAST)
    assert done.code == 0, done.err
    listed = initialised("dags", "list", "-o", "json", extra_env=FAST).json()
    assert [(row["dag_id"], row["paused"]) for row in listed] == [("good", paused)]
    assert len(importers(marker)) >= 2
    assert_not_imported_by(done, marker)


@pytest.mark.parametrize("executor", ["local", "sequential"])
def test_backfill_runs_the_good_dag_without_importing_the_hostile_files(initialised: Cli, marker: Path,
                                                                       executor: str) -> None:
    hostile_folder(initialised, marker)
    done = initialised("dags", "backfill", "good", "-s", "2025-01-01", "-e", "2025-01-02", "--executor", executor,
                       extra_env=FAST)
    assert done.code == 0, done.err
    assert "backfill of good: 2 run(s) succeeded" in done.err
    assert len(importers(marker)) >= 2
    assert_not_imported_by(done, marker)


@pytest.mark.parametrize("command", [("dags", "test", "doomed"), ("tasks", "test", "doomed", "a")])
def test_a_dag_whose_own_file_exits_is_its_import_error_in_one_line(cli: Cli, marker: Path,
                                                                   command: tuple[str, ...]) -> None:
    doomed = write_dag(cli.env.dags, "doomed.py", DOOMED + EXITING.format(marker=str(marker)))
    done = cli(*command, extra_env=FAST)
    assert done.code == 1
    assert done.err.strip().splitlines() == [done.error_line]
    assert done.error_line.startswith(f"error: DAG 'doomed' could not be loaded: {doomed}: DagFileProcessError")
    assert "exit code 3" in done.error_line
    assert_not_imported_by(done, marker)


def test_a_dag_whose_file_broke_after_it_was_stored_is_not_imported_again(initialised: Cli, marker: Path) -> None:
    doomed = write_dag(initialised.env.dags, "doomed.py", DOOMED)
    assert initialised("dags", "list").code == 0  # stored while its file imported
    write_dag(initialised.env.dags, "doomed.py", DOOMED + SLEEPING.format(marker=str(marker)))
    done = initialised("dags", "test", "doomed", extra_env=FAST)
    assert done.code == 1
    assert done.error_line.startswith(f"error: DAG 'doomed' could not be loaded: {doomed}: DagFileProcessError")
    assert "timed out after 1 s" in done.error_line
    assert_not_imported_by(done, marker)
