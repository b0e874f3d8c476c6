"""Hostile DAG files beside a good one: the read-only commands list the good DAG, name the bad file and
say how its parsing process died, and exit normally; a file is never imported in the command's process."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import write_dag

GOOD = """
    from datetime import datetime
    from nbflow import DAG
    from nbflow.operators.empty import EmptyOperator
    with DAG("good", schedule="@daily", start_date=datetime(2025, 1, 1)):
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""

HOSTILE = {
    "os_exit": ("import os\nos._exit(3)\n", "exited with exit code 3"),
    "sigalrm_blocked": ("import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
                        "while True:\n    time.sleep(1)\n", "timed out after 1 s"),
    "segfault": ("import ctypes\nctypes.string_at(0)\n", "died of signal SIGSEGV"),
    "memory_hog": ("hog = [bytearray(64 * 1024 ** 2) for _ in range(1_000)]\n", "MemoryError"),
    "syntax_error": ("def broken(:\n", "SyntaxError"),
}
FAST = {"NBFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "1", "NBFLOW__DAG_PROCESSOR__MAX_MEMORY_MB": "256"}


@pytest.fixture(params=["before_db_init", "after_db_init"])
def cli(request: pytest.FixtureRequest, nbflow: Cli) -> Cli:
    """The CLI with and without a metadata database (without one, nothing is stored)."""
    if request.param == "after_db_init":
        assert nbflow("db", "init").code == 0
    return nbflow


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_dags_list_shows_the_good_dag_beside_a_hostile_file(cli: Cli, kind: str) -> None:
    write_dag(cli.env.dags, "good.py", GOOD)
    write_dag(cli.env.dags, "bad.py", "# nbflow dag\n" + HOSTILE[kind][0])
    done = cli("dags", "list", "-o", "json", extra_env=FAST)
    assert done.code == 0 and [row["dag_id"] for row in done.json()] == ["good"]
    assert "1 file(s) failed to import" in done.err


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_list_import_errors_names_the_hostile_file_and_how_it_failed(cli: Cli, kind: str) -> None:
    write_dag(cli.env.dags, "good.py", GOOD)
    bad = write_dag(cli.env.dags, "bad.py", "# nbflow dag\n" + HOSTILE[kind][0])
    done = cli("dags", "list-import-errors", "-o", "json", extra_env=FAST)
    [entry] = done.json()
    assert done.code == 0 and entry["file"] == "bad.py"
    assert entry["error"].startswith(str(bad)) and HOSTILE[kind][1] in entry["error"]


def test_show_and_tasks_list_read_the_good_dag_beside_an_exiting_file(cli: Cli) -> None:
    write_dag(cli.env.dags, "good.py", GOOD)
    write_dag(cli.env.dags, "bad.py", "# nbflow dag\n" + HOSTILE["os_exit"][0])
    shown = cli("dags", "show", "good", extra_env=FAST)
    tasks = cli("tasks", "list", "good", "-o", "json", extra_env=FAST)
    assert shown.code == 0 and "n_a -> n_b;" in shown.out
    assert tasks.code == 0 and [(t["task_id"], t["downstream"]) for t in tasks.json()] == [("a", ["b"]), ("b", [])]


def test_a_slow_file_is_given_up_at_the_import_timeout_not_waited_for(cli: Cli) -> None:
    write_dag(cli.env.dags, "good.py", GOOD)
    slow = write_dag(cli.env.dags, "slow.py", "import time  # nbflow dag\ntime.sleep(20)\n")
    done = cli("dags", "list-import-errors", "-o", "json", extra_env=FAST)
    [entry] = done.json()
    assert entry["error"].startswith(f"{slow}:2: DagImportTimeout: the file took longer than 1 s")


def test_an_unchanged_slow_file_is_not_parsed_again_by_the_next_listing(initialised: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "imports.txt"
    write_dag(initialised.env.dags, "slow.py",
              f"import time  # nbflow dag\nopen({str(marker)!r}, 'a').write('x')\ntime.sleep(20)\n")
    first = initialised("dags", "list", extra_env=FAST)
    second = initialised("dags", "list", extra_env=FAST)
    assert (first.code, second.code) == (0, 0) and "1 file(s) failed to import" in second.err
    assert marker.read_text() == "x"


def test_a_new_file_with_a_dag_appears_in_the_next_listing(initialised: Cli) -> None:
    write_dag(initialised.env.dags, "good.py", GOOD)
    initialised("dags", "list")
    write_dag(initialised.env.dags, "more.py", GOOD.replace('"good"', '"more"'))
    done = initialised("dags", "list", "-o", "json")
    assert [row["dag_id"] for row in done.json()] == ["good", "more"]


PARAMS_DAG = """
    from nbflow import DAG
    from nbflow.models import Param
    from nbflow.operators.empty import EmptyOperator
    with DAG("checked", schedule=None, params={"n": Param(1, type="integer")}):
        EmptyOperator(task_id="a")
"""


def test_trigger_queues_a_run_beside_an_exiting_file(initialised: Cli) -> None:
    write_dag(initialised.env.dags, "good.py", GOOD)
    write_dag(initialised.env.dags, "bad.py", "# nbflow dag\n" + HOSTILE["os_exit"][0])
    done = initialised("dags", "trigger", "good", "-o", "json", extra_env=FAST)
    assert done.code == 0 and done.json()[0]["state"] == "queued"


def test_trigger_checks_the_conf_against_params_in_a_child(initialised: Cli) -> None:
    write_dag(initialised.env.dags, "checked.py", PARAMS_DAG)
    done = initialised("dags", "trigger", "checked", "--conf", '{"n": "many"}')
    assert done.code == 1 and "DAG 'checked'" in done.error_line and "n" in done.error_line
