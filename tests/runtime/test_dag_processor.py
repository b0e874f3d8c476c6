"""The DAG processor: files parsed in child processes, stored as serialized DAGs, re-parsed only when changed."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from nbflow.runtime.dag_processor import ProcessorSettings, parse_folder, refresh
from nbflow.runtime.parse_processes import ParseLimits
from nbflow.runtime.serialized_dag import SerializedDag
from nbflow.store import make_engine, make_session_factory, session_scope
from nbflow.store import serialized_dags as stored
from nbflow.store.migrate import init_db
from tests.conftest import write_dag

GOOD = """
    from datetime import datetime, timedelta
    from nbflow import DAG
    from nbflow.operators.empty import EmptyOperator
    from nbflow.sdk import TaskGroup

    with DAG("good", schedule="@daily", start_date=datetime(2025, 1, 1), tags=["t"], max_active_runs=2,
             default_args={"retries": 3, "retry_delay": timedelta(seconds=7)}):
        with TaskGroup("grp"):
            first = EmptyOperator(task_id="first", pool="p1", trigger_rule="all_done")
        first >> EmptyOperator(task_id="second")
"""


def one_dag(dag_id: str) -> str:
    return f"""
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("{dag_id}"):
            EmptyOperator(task_id="only")
    """


@pytest.fixture
def sessions(tmp_path: Path) -> Callable[[], Session]:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    init_db(url)
    return make_session_factory(make_engine(url))


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    return folder


def settings(folder: Path, timeout: float = 5.0) -> ProcessorSettings:
    return ProcessorSettings(folder, ParseLimits(timeout=timeout, processes=2, max_memory_mb=512))


def stored_dags(sessions: Callable[[], Session]) -> dict[str, SerializedDag]:
    with session_scope(sessions) as session:
        return {row.dag_id: SerializedDag(row.data) for row in stored.list_serialized_dags(session)}


def import_errors(sessions: Callable[[], Session]) -> dict[str, str]:
    with session_scope(sessions) as session:
        return stored.import_errors(session)


def test_refresh_stores_each_dag_of_a_file_with_its_structure(sessions, dags: Path) -> None:
    path = write_dag(dags, "good.py", GOOD)
    refresh(sessions, settings(dags))
    dag = stored_dags(sessions)["good"]
    assert (dag.fileloc, dag.schedule_summary, dag.tags, dag.max_active_runs) == (str(path), "@daily", ["t"], 2)
    first = dag.get_task("grp.first")
    assert (first.retries, first.retry_delay.total_seconds(), first.pool, first.trigger_rule) == (3, 7.0, "p1",
                                                                                                  "all_done")
    assert first.downstream_task_ids == {"second"} and first.task_group.group_id == "grp"


def test_an_unchanged_file_is_not_parsed_again(sessions, dags: Path) -> None:
    write_dag(dags, "good.py", GOOD)
    refresh(sessions, settings(dags))
    again = refresh(sessions, settings(dags))
    assert (again.parsed, again.unchanged) == ((), 1)


def test_a_file_touched_without_a_content_change_is_not_parsed_again(sessions, dags: Path) -> None:
    path = write_dag(dags, "good.py", GOOD)
    refresh(sessions, settings(dags))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert refresh(sessions, settings(dags)).parsed == ()


def test_a_changed_file_is_parsed_again_and_its_old_dags_go(sessions, dags: Path) -> None:
    path = write_dag(dags, "one.py", one_dag("before"))
    refresh(sessions, settings(dags))
    write_dag(dags, "one.py", one_dag("after"))
    result = refresh(sessions, settings(dags))
    assert result.parsed == (str(path),) and set(stored_dags(sessions)) == {"after"}


def test_a_deleted_file_takes_its_dags_and_record_with_it(sessions, dags: Path) -> None:
    path = write_dag(dags, "one.py", one_dag("gone"))
    refresh(sessions, settings(dags))
    path.unlink()
    assert refresh(sessions, settings(dags)).removed == (str(path),)
    with session_scope(sessions) as session:
        assert stored_dags(sessions) == {} and stored.dag_files(session) == {}


@pytest.mark.parametrize(("text", "how"), [
    ("import os\nos._exit(3)\n", "exited with exit code 3"),
    ("import ctypes\nctypes.string_at(0)\n", "died of signal SIGSEGV"),
    ("import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\ntime.sleep(600)\n",
     "timed out after 1 s"),
    ("data = bytearray(64 * 1024 ** 3)\n", "MemoryError"),
    ("raise RuntimeError('first line\\nthe last line')\n", "RuntimeError: first line"),
    ("def (:\n", "SyntaxError"),
], ids=["os_exit", "segfault", "sigalrm_blocked", "memory_hog", "exception", "syntax_error"])
def test_a_file_that_kills_its_parser_is_an_import_error_and_its_neighbour_is_stored(
        sessions, dags: Path, text: str, how: str) -> None:
    bad = write_dag(dags, "bad.py", "# nbflow dag\n" + text)
    write_dag(dags, "good.py", GOOD)
    refresh(sessions, settings(dags, timeout=1.0))
    assert set(stored_dags(sessions)) == {"good"}
    error = import_errors(sessions)[str(bad)]
    assert error.startswith(f"{bad}") and how in error


def test_a_dag_id_defined_by_two_files_is_an_error_on_the_second(sessions, dags: Path) -> None:
    first = write_dag(dags, "a.py", one_dag("same"))
    second = write_dag(dags, "b.py", one_dag("same"))
    refresh(sessions, settings(dags))
    assert stored_dags(sessions)["same"].fileloc == str(first)
    assert "NbflowDagDuplicatedIdException" in import_errors(sessions)[str(second)]


def test_parse_folder_without_a_database_reports_dags_and_errors(dags: Path) -> None:
    write_dag(dags, "good.py", GOOD)
    bad = write_dag(dags, "bad.py", "# nbflow dag\nimport os\nos._exit(4)\n")
    parsed = parse_folder(settings(dags))
    assert set(parsed.dags) == {"good"} and "exit code 4" in parsed.import_errors[str(bad)]


def test_parse_folder_looking_for_a_dag_leaves_files_that_do_not_name_it_unparsed(dags: Path) -> None:
    write_dag(dags, "a.py", "# nbflow dag\nimport os\nos._exit(4)\n")
    write_dag(dags, "b.py", one_dag("wanted"))
    parsed = parse_folder(settings(dags), dag_id="wanted")
    assert set(parsed.dags) == {"wanted"} and parsed.import_errors == {}


def test_parse_folder_looking_for_a_dag_keeps_the_first_file_by_path_that_defines_it(dags: Path) -> None:
    first = write_dag(dags, "a.py", one_dag("wanted"))
    write_dag(dags, "b.py", one_dag("wanted"))
    assert parse_folder(settings(dags), dag_id="wanted").dags["wanted"].fileloc == str(first)


def test_parse_folder_looking_for_a_dag_no_file_names_parses_them_all(dags: Path) -> None:
    write_dag(dags, "good.py", GOOD)
    bad = write_dag(dags, "bad.py", "# nbflow dag\nimport os\nos._exit(4)\n")
    parsed = parse_folder(settings(dags), dag_id="nosuch")
    assert set(parsed.dags) == {"good"} and "exit code 4" in parsed.import_errors[str(bad)]


def test_serialized_dag_rebuilds_its_schedule(dags: Path) -> None:
    write_dag(dags, "good.py", GOOD)
    dag = parse_folder(settings(dags)).dags["good"]
    assert dag.timetable.summary == "@daily" and dag.start_date is not None and dag.start_date.year == 2025


def test_refresh_in_a_spawned_process_stores_what_a_kernel_may_not_fork_to_parse(tmp_path: Path, dags: Path) -> None:
    from nbflow.configuration import Config
    from nbflow.runtime.dag_processor import refresh_in_subprocess
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    init_db(url)
    write_dag(dags, "good.py", GOOD)
    config = Config(values={"core": {"dags_folder": str(dags)}, "database": {"sql_alchemy_conn": url}},
                    env=dict(os.environ))
    assert refresh_in_subprocess(config).parsed == (str(dags / "good.py"),)
    assert set(stored_dags(make_session_factory(make_engine(url)))) == {"good"}


def test_files_after_a_fatal_one_in_the_same_batch_are_still_parsed(sessions, dags: Path) -> None:
    write_dag(dags, "a.py", one_dag("first"))
    bad = write_dag(dags, "b.py", "# nbflow dag\nimport os\nos._exit(5)\n")
    write_dag(dags, "c.py", one_dag("third"))
    refresh(sessions, ProcessorSettings(dags, ParseLimits(timeout=5, processes=1)))
    assert set(stored_dags(sessions)) == {"first", "third"} and "exit code 5" in import_errors(sessions)[str(bad)]



def test_files_handed_to_a_child_killed_at_its_deadline_are_parsed_by_the_next_one(sessions, dags: Path) -> None:
    hung = write_dag(dags, "a.py", "# nbflow dag\nimport signal, time\n"
                     "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\ntime.sleep(600)\n")
    write_dag(dags, "b.py", one_dag("second"))
    write_dag(dags, "c.py", one_dag("third"))
    refresh(sessions, ProcessorSettings(dags, ParseLimits(timeout=0.5, processes=1)))
    assert set(stored_dags(sessions)) == {"second", "third"} and "was killed" in import_errors(sessions)[str(hung)]


SLOW = """
    # nbflow dag
    import time
    time.sleep(1.5)
    from nbflow import DAG
    from nbflow.operators.empty import EmptyOperator
    with DAG("slow"):
        EmptyOperator(task_id="only")
"""


def test_a_file_that_timed_out_is_not_parsed_again_under_the_same_timeout(sessions, dags: Path) -> None:
    slow = write_dag(dags, "slow.py", SLOW)
    refresh(sessions, settings(dags, timeout=0.5))
    assert "0.5 s" in import_errors(sessions)[str(slow)]
    assert refresh(sessions, settings(dags, timeout=0.5)).parsed == ()


def test_a_file_that_timed_out_is_parsed_again_when_the_timeout_is_raised(sessions, dags: Path) -> None:
    slow = write_dag(dags, "slow.py", SLOW)
    refresh(sessions, settings(dags, timeout=0.5))
    assert str(slow) in import_errors(sessions)
    assert refresh(sessions, settings(dags, timeout=30)).parsed == (str(slow),)
    assert set(stored_dags(sessions)) == {"slow"} and import_errors(sessions) == {}


# -- cells registered from a kernel: kept while their kernel lives -------------------------------------

KERNEL = """
import sys
from nbflow.runtime.dag_processor import ProcessorSettings, refresh
from nbflow.runtime.dag_source import DagSource
from nbflow.runtime.magic_cells import MagicCell
from nbflow.runtime.notebook_dags import cells_to_json
from nbflow.runtime.parse_processes import ParseLimits
from nbflow.store import make_engine, make_session_factory
url, folder = sys.argv[1], sys.argv[2]
cells = [MagicCell("dag", "from_cells"), MagicCell("task", "root", "1 + 1")]
source = DagSource.for_cells("from_cells", cells_to_json(cells))
refresh(make_session_factory(make_engine(url)), ProcessorSettings(__import__("pathlib").Path(folder),
        ParseLimits(timeout=10, processes=1)), sources=[source])
print("registered", flush=True)
sys.stdin.read()  # until the test closes stdin (a clean shutdown) or kills it
"""


@pytest.fixture
def kernel(tmp_path: Path, dags: Path, sessions) -> "Callable[[], subprocess.Popen[str]]":
    """Starts a stand-in kernel: a process that registers DAG `from_cells` from cells, then waits."""
    import subprocess
    import sys
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", KERNEL, f"sqlite:///{tmp_path / 'meta.db'}", str(dags)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout is not None and process.stdout.readline() == "registered\n"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_kernels_cells_stay_while_the_kernel_lives(sessions, dags: Path, kernel) -> None:
    kernel()
    refresh(sessions, settings(dags))  # another process's refresh, knowing nothing of those cells
    assert set(stored_dags(sessions)) == {"from_cells"}


def test_a_killed_kernels_cells_are_forgotten_at_the_next_refresh(sessions, dags: Path, kernel) -> None:
    process = kernel()
    process.kill()
    process.wait()
    assert set(stored_dags(sessions)) == {"from_cells"}
    assert refresh(sessions, settings(dags)).removed == ("kernel:from_cells",)
    assert stored_dags(sessions) == {}
    with session_scope(sessions) as session:
        assert "kernel:from_cells" not in stored.dag_files(session)


def test_a_kernel_that_shuts_down_cleanly_takes_its_cells_along(sessions, dags: Path, kernel) -> None:
    process = kernel()
    process.communicate("")  # stdin closed: the process ends normally
    assert process.returncode == 0
    assert stored_dags(sessions) == {}


def test_cells_refreshed_through_a_spawned_process_belong_to_the_caller_not_to_that_process(
        tmp_path: Path, dags: Path, sessions) -> None:
    from nbflow.configuration import Config
    from nbflow.runtime.dag_processor import refresh_in_subprocess
    from nbflow.runtime.dag_source import DagSource
    from nbflow.runtime.magic_cells import MagicCell
    from nbflow.runtime.notebook_dags import cells_to_json

    source = DagSource.for_cells("from_cells", cells_to_json([MagicCell("dag", "from_cells"),
                                                              MagicCell("task", "root", "1 + 1")]))
    config = Config(values={"core": {"dags_folder": str(dags)},
                            "database": {"sql_alchemy_conn": f"sqlite:///{tmp_path / 'meta.db'}"}},
                    env=dict(os.environ))
    assert refresh_in_subprocess(config, sources=[source]).parsed == ("kernel:from_cells",)
    assert refresh(sessions, settings(dags)).removed == ()  # the spawned process has exited; this one has not
    assert set(stored_dags(sessions)) == {"from_cells"}


def test_a_file_takes_a_dag_id_over_from_kernel_cells_without_an_error(sessions, dags: Path, kernel) -> None:
    kernel()
    saved = write_dag(dags, "from_cells.py", one_dag("from_cells"))  # what `%dag export` writes
    refresh(sessions, settings(dags))
    assert stored_dags(sessions)["from_cells"].fileloc == str(saved)
    assert import_errors(sessions) == {}


def test_kernel_cells_leave_a_saved_files_dag_to_it_without_an_error(sessions, dags: Path, kernel) -> None:
    saved = write_dag(dags, "from_cells.py", one_dag("from_cells"))
    refresh(sessions, settings(dags))
    kernel()  # registers its cells for the same id
    assert stored_dags(sessions)["from_cells"].fileloc == str(saved)
    assert import_errors(sessions) == {}
