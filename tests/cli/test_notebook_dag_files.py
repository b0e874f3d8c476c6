"""A notebook saved in the dags folder runs with no kernel open: `nbflow scheduler` and `nbflow dags test`."""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.configuration import load_config
from nbflow.runtime import api
from tests.cli.conftest import Cli
from tests.conftest import NbflowEnv
from tests.ipynb import write_cells


def daily(marks: Path) -> tuple[str, ...]:
    return (
        "md:# Daily totals\nA DAG written only with magics.",
        "%%dag daily_totals --schedule @daily --start-date 2025-01-01 --retries 0",
        "%%setup\nfrom pathlib import Path",
        f"%%task extract\nPath({str(marks)!r}).open('a').write('extract ' + context['ds'] + '\\n')\n[3, 4]",
        "%%task total --upstream extract\nsum(extract)",
        f"%%bash_task report --upstream total\necho \"report {{{{ ti.xcom_pull(task_ids='total') }}}}\" >> {marks}",
        "print('an ordinary cell: the scheduler never runs it')",
    )


def test_the_scheduler_runs_a_notebook_dag_on_its_schedule_with_no_kernel(
        initialised: Cli, nbflow_env: NbflowEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marks = tmp_path / "marks.txt"
    write_cells(nbflow_env.dags / "daily_totals.ipynb", *daily(marks))
    done = initialised("scheduler", "--until-idle", extra_env={"NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false"},
                       timeout=240)
    assert done.code == 0, done.err
    env = api.Environment.from_config(load_config())
    runs = api.list_runs(env, "daily_totals")
    assert [(r.run_type, r.state) for r in runs] == [("scheduled", "success")]
    ds = runs[0].logical_date.date().isoformat()
    assert marks.read_text().splitlines() == [f"extract {ds}", "report 7"]
    assert {ti.task_id: ti.state for ti in api.task_states(env, "daily_totals", runs[0].run_id)} == \
        {"extract": "success", "total": "success", "report": "success"}


def test_dags_test_runs_a_notebook_dag(nbflow: Cli, nbflow_env: NbflowEnv, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    write_cells(nbflow_env.dags / "daily_totals.ipynb", *daily(marks))
    done = nbflow("dags", "test", "daily_totals", "2025-03-01")
    assert done.code == 0, done.err
    assert ": success in " in done.err
    assert marks.read_text().splitlines() == ["extract 2025-03-01", "report 7"]


def test_dags_test_of_a_failing_cell_task_shows_its_traceback(nbflow: Cli, nbflow_env: NbflowEnv) -> None:
    write_cells(nbflow_env.dags / "fails.ipynb", "%%dag fails", "%%task boom\nx = 1\nraise ValueError(f'bad x {x}')")
    done = nbflow("dags", "test", "fails")
    assert done.code == 1
    assert "ValueError: bad x 1" in done.out + done.err
    assert done.error_line.startswith("error: run ") and "task boom failed" in done.error_line
