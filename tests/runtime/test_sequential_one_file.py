"""The sequential executor's attempts import only the workload's own file (in a child of its worker),
never a file whose parsing process died (a hostile file writes its importer's PID to a marker file)."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from nbflow.runtime import api
from tests.cli.test_commands_beside_hostile_files import EXITING, SLEEPING
from tests.cli.test_hostile_dag_files import FAST, GOOD
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "imported_by.txt"


def importers(marker: Path) -> list[int]:
    return [int(pid) for pid in marker.read_text().split()] if marker.exists() else []


def test_a_run_under_the_sequential_executor_imports_no_other_dag_file(nbflow_env, marker: Path) -> None:
    write_dag(nbflow_env.dags, "good.py", GOOD)
    write_dag(nbflow_env.dags, "exiting.py", EXITING.format(marker=str(marker)))
    write_dag(nbflow_env.dags, "sleeping.py", SLEEPING.format(marker=str(marker)))
    env = make_env()
    api.set_paused(env, "good", False)
    run = api.trigger_dag(env, "good")
    run_scheduler_until_idle(env, executor="sequential")
    assert api.get_run(env, "good", run.run_id).state == "success"
    assert len(importers(marker)) >= 2 and os.getpid() not in importers(marker)


def test_the_sequential_executor_does_not_import_a_kept_dags_file_that_now_exits(nbflow_env, marker: Path) -> None:
    scheduled = textwrap.dedent(GOOD).replace('"good"', '"doomed"')
    write_dag(nbflow_env.dags, "doomed.py", scheduled)
    env = make_env()
    api.set_paused(env, "doomed", False)  # stored while its file imported
    write_dag(nbflow_env.dags, "doomed.py", scheduled + "\n" + EXITING.format(marker=str(marker)))
    api.trigger_dag(env, "doomed")
    scheduler = api.make_scheduler(env, executor="sequential")
    scheduler.executor.start()
    for _ in range(3):  # parse (in a child), queue, hand to the executor: its attempt is refused, not imported
        scheduler.run_once()
    scheduler.executor.end(wait=True)
    assert len(importers(marker)) >= 1 and os.getpid() not in importers(marker)
