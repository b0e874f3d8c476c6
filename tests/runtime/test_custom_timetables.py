"""Custom Timetable classes: from the plugins folder the scheduler rebuilds and runs them; from a DAG file
they are that file's import error, never a DAG that silently schedules nothing."""
from __future__ import annotations

import logging
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle

EVERY_N_DAYS = '''
from datetime import timedelta
from nbflow.authoring.timetables import DataInterval, Timetable


class EveryNDays(Timetable):
    """Intervals of `days` days from the DAG's start date."""

    def __init__(self, days):
        self.days = days
        self.summary = f"every {days} days"

    def serialize(self):
        return {"days": self.days}

    @classmethod
    def deserialize(cls, data):
        return cls(data["days"])

    def next_after(self, last, *, start_date):
        start = last.end if last is not None else start_date
        if start is None:
            return None
        return DataInterval(start, start + timedelta(days=self.days))
'''

DAG_WITH_PLUGIN_TIMETABLE = """
    from datetime import datetime, timezone
    from every_n_days import EveryNDays
    from nbflow import DAG
    from nbflow.operators.empty import EmptyOperator
    with DAG("fortnightly", schedule=EveryNDays({days}), start_date={start}, catchup=True):
        EmptyOperator(task_id="noop")
"""


def write_fortnightly(dags: Path, *, days: int, start: datetime | None) -> None:
    when = f"datetime.fromisoformat({start.isoformat()!r})" if start is not None else "None"
    write_dag(dags, "fortnightly.py", DAG_WITH_PLUGIN_TIMETABLE.format(days=days, start=when))


@pytest.fixture
def env(nbflow_env, monkeypatch, tmp_path: Path):
    plugins = tmp_path / "plugins"
    write_dag(plugins, "every_n_days.py", EVERY_N_DAYS)
    monkeypatch.setenv("NBFLOW__CORE__PLUGINS_FOLDER", str(plugins))
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


def test_the_scheduler_runs_a_dag_on_a_plugin_timetable(env) -> None:
    start = (datetime.now(timezone.utc) - timedelta(days=7)).replace(microsecond=0)
    write_fortnightly(env.dags, days=3, start=start)
    environment = make_env()
    run_scheduler_until_idle(environment)
    runs = sorted(api.list_runs(environment, "fortnightly"), key=lambda r: r.logical_date)
    assert [(r.data_interval_start, r.data_interval_end) for r in runs] == [
        (start, start + timedelta(days=3)), (start + timedelta(days=3), start + timedelta(days=6))]
    assert {r.state for r in runs} == {"success"}


def test_a_stored_plugin_timetable_keeps_its_class_and_data(env) -> None:
    write_fortnightly(env.dags, days=2, start=datetime(2025, 1, 1, tzinfo=timezone.utc))
    environment = make_env()
    dag = api.get_serialized_dag(environment, "fortnightly")
    assert type(dag.timetable).__name__ == "EveryNDays" and dag.timetable.days == 2
    assert dag.schedule_summary == "every 2 days"
    first = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert [i.start for i in dag.timetable.intervals_between(first, first + timedelta(days=5))] == [
        first, first + timedelta(days=2), first + timedelta(days=4)]


def test_a_timetable_class_defined_in_a_dag_file_is_that_files_import_error(env) -> None:
    path = write_dag(env.dags, "inline.py", EVERY_N_DAYS + """
from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
with DAG("inline", schedule=EveryNDays(1), start_date=None):
    EmptyOperator(task_id="noop")
""")
    environment = make_env()
    errors = api.list_import_errors(environment)
    assert [e.path for e in errors] == [str(path)]
    message = errors[0].error
    assert "EveryNDays" in message and "plugins folder" in message and "\n" not in message.strip()
    assert "inline" not in {d.dag_id for d in api.list_dags(environment).dags}


def test_a_plugin_timetable_gone_since_storing_schedules_nothing_and_says_why(env, tmp_path, caplog) -> None:
    start = (datetime.now(timezone.utc) - timedelta(days=7)).replace(microsecond=0)
    write_fortnightly(env.dags, days=3, start=start)
    environment = make_env()
    stored = api.get_serialized_dag(environment, "fortnightly")
    (tmp_path / "plugins" / "every_n_days.py").unlink()
    sys.modules.pop("every_n_days", None)
    from nbflow.runtime.serialized_dag import SerializedDag
    with caplog.at_level(logging.WARNING):
        table = SerializedDag(stored.data).timetable
    assert type(table).__name__ == "NullTimetable"
    assert "fortnightly" in caplog.text and "every_n_days" in caplog.text


def test_backfill_runs_each_interval_of_a_plugin_timetable(env) -> None:
    write_fortnightly(env.dags, days=2, start=None)  # no scheduled runs: only the backfill's
    make_env()
    result = subprocess.run([sys.executable, "-m", "nbflow.cli.main", "dags", "backfill", "fortnightly",
                             "-s", "2025-01-01", "-e", "2025-01-05", "--executor", "sequential"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    runs = sorted(api.list_runs(make_env(), "fortnightly"), key=lambda r: r.logical_date)
    assert [(r.logical_date.day, r.run_type, r.state) for r in runs] == [
        (1, "backfill", "success"), (3, "backfill", "success"), (5, "backfill", "success")]
