"""Schedules: cron strings, presets, timedeltas, @once and None, their data intervals, runs due."""
from __future__ import annotations

import datetime as dt
import re
import runpy
from pathlib import Path

import pendulum
import pytest

from nbflow.authoring.dag import DAG
from nbflow.authoring.timetables import DataInterval, make_timetable
from nbflow.exceptions import InvalidScheduleError
from tests.conftest import write_dag

UTC = dt.timezone.utc


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("schedule", "first", "second"), [
    ("0 6 * * *", (at(2025, 1, 1, 6), at(2025, 1, 2, 6)), (at(2025, 1, 2, 6), at(2025, 1, 3, 6))),
    ("@hourly", (at(2025, 1, 1, 0), at(2025, 1, 1, 1)), (at(2025, 1, 1, 1), at(2025, 1, 1, 2))),
    ("@daily", (at(2025, 1, 1), at(2025, 1, 2)), (at(2025, 1, 2), at(2025, 1, 3))),
    ("@weekly", (at(2025, 1, 5), at(2025, 1, 12)), (at(2025, 1, 12), at(2025, 1, 19))),  # Sundays
    ("@monthly", (at(2025, 1, 1), at(2025, 2, 1)), (at(2025, 2, 1), at(2025, 3, 1))),
    ("@yearly", (at(2025, 1, 1), at(2026, 1, 1)), (at(2026, 1, 1), at(2027, 1, 1))),
    (dt.timedelta(hours=6), (at(2025, 1, 1), at(2025, 1, 1, 6)), (at(2025, 1, 1, 6), at(2025, 1, 1, 12))),
    (pendulum.duration(days=2), (at(2025, 1, 1), at(2025, 1, 3)), (at(2025, 1, 3), at(2025, 1, 5))),
], ids=["cron", "hourly", "daily", "weekly", "monthly", "yearly", "timedelta", "pendulum-duration"])
def test_schedule_gives_consecutive_data_intervals(schedule: object, first: tuple[dt.datetime, dt.datetime],
                                                   second: tuple[dt.datetime, dt.datetime]) -> None:
    d = DAG("sched", schedule=schedule, start_date=dt.datetime(2025, 1, 1))
    one = d.timetable.next_after(None, start_date=d.start_date)
    assert one == DataInterval(*first)
    assert d.timetable.next_after(one, start_date=d.start_date) == DataInterval(*second)


def test_cron_first_interval_starts_at_the_first_tick_after_start_date() -> None:
    timetable = make_timetable("30 * * * *")
    assert timetable.next_after(None, start_date=at(2025, 1, 1, 10, 31)) == \
        DataInterval(at(2025, 1, 1, 11, 30), at(2025, 1, 1, 12, 30))


def test_once_runs_a_single_time_at_start_date() -> None:
    timetable = make_timetable("@once")
    first = timetable.next_after(None, start_date=at(2025, 1, 1))
    assert first == DataInterval(at(2025, 1, 1), at(2025, 1, 1))
    assert timetable.next_after(first, start_date=at(2025, 1, 1)) is None
    assert not timetable.periodic


def test_none_schedule_never_runs_by_itself() -> None:
    timetable = DAG("manual_only", schedule=None, start_date=dt.datetime(2025, 1, 1)).timetable
    assert timetable.next_after(None, start_date=at(2025, 1, 1)) is None
    assert timetable.runs_due(last=None, start_date=at(2025, 1, 1), end_date=None, now=at(2026, 1, 1),
                              catchup=True) == []


def test_runs_due_with_catchup_are_every_missed_interval() -> None:
    due = make_timetable("@daily").runs_due(last=None, start_date=at(2025, 1, 1), end_date=None,
                                            now=at(2025, 1, 4, 0, 30), catchup=True)
    assert [i.start for i in due] == [at(2025, 1, 1), at(2025, 1, 2), at(2025, 1, 3)]


def test_runs_due_without_catchup_is_only_the_latest_interval() -> None:
    due = make_timetable("@daily").runs_due(last=None, start_date=at(2025, 1, 1), end_date=None,
                                            now=at(2025, 1, 4, 0, 30), catchup=False)
    assert due == [DataInterval(at(2025, 1, 3), at(2025, 1, 4))]


def test_runs_due_continue_after_the_last_run_and_stop_at_end_date() -> None:
    timetable = make_timetable("@daily")
    last = DataInterval(at(2025, 1, 1), at(2025, 1, 2))
    due = timetable.runs_due(last=last, start_date=at(2025, 1, 1), end_date=at(2025, 1, 3), now=at(2025, 2, 1),
                             catchup=True)
    assert [i.start for i in due] == [at(2025, 1, 2), at(2025, 1, 3)]


def test_an_interval_is_not_due_before_it_ends() -> None:
    due = make_timetable("@daily").runs_due(last=None, start_date=at(2025, 1, 1), end_date=None,
                                            now=at(2025, 1, 1, 23, 59), catchup=True)
    assert due == []


def test_once_is_due_once() -> None:
    timetable = make_timetable("@once")
    due = timetable.runs_due(last=None, start_date=at(2025, 1, 1), end_date=None, now=at(2025, 6, 1), catchup=True)
    assert due == [DataInterval(at(2025, 1, 1), at(2025, 1, 1))]
    assert timetable.runs_due(last=due[0], start_date=at(2025, 1, 1), end_date=None, now=at(2025, 6, 1),
                              catchup=True) == []


def test_intervals_between_lists_backfill_intervals() -> None:
    d = DAG("backfill", schedule="0 12 * * *", start_date=dt.datetime(2025, 1, 1))
    assert [i.start for i in d.iter_dagrun_infos_between(at(2025, 1, 1), at(2025, 1, 3, 12))] == \
        [at(2025, 1, 1, 12), at(2025, 1, 2, 12), at(2025, 1, 3, 12)]


def test_cron_is_evaluated_in_the_start_dates_timezone() -> None:
    """As in Airflow, '0 6 * * *' with an Amsterdam start date runs at 06:00 Amsterdam time."""
    d = DAG("local_cron", schedule="0 6 * * *", start_date=pendulum.datetime(2025, 1, 1, tz="Europe/Amsterdam"))
    first = d.timetable.next_after(None, start_date=d.start_date)
    assert first == DataInterval(at(2025, 1, 1, 5), at(2025, 1, 2, 5))
    summer = d.timetable.next_after(None, start_date=at(2025, 7, 1))
    assert summer is not None and summer.start == at(2025, 7, 1, 4), "06:00 CEST is 04:00 UTC"


@pytest.mark.parametrize("schedule", ["not a cron", "61 * * * *", "* * *", "@sometimes"])
def test_bad_cron_string_is_an_error_naming_the_dag(schedule: str) -> None:
    with pytest.raises(InvalidScheduleError, match=re.escape(f"DAG 'bad_cron': schedule '{schedule}' is not a valid cron")):
        DAG("bad_cron", schedule=schedule)


@pytest.mark.parametrize("schedule", [5, dt.timedelta(0), "@continuous"])
def test_unsupported_schedule_is_an_error_naming_the_dag(schedule: object) -> None:
    with pytest.raises(InvalidScheduleError, match="DAG 'bad_schedule'"):
        DAG("bad_schedule", schedule=schedule)


def test_bad_cron_string_fails_loading_the_dag_file(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "bad_schedule.py", """
        from nbflow import DAG

        with DAG("nightly", schedule="0 25 * * *") as dag:
            pass
    """)
    with pytest.raises(InvalidScheduleError, match="DAG 'nightly': schedule '0 25 \\* \\* \\*'"):
        runpy.run_path(str(path))


def test_schedule_summary_is_kept() -> None:
    assert DAG("s1", schedule="@daily").timetable.summary == "@daily"
    assert DAG("s2", schedule=None).timetable.summary == "None"
    assert DAG("s3", schedule="@once").timetable.summary == "@once"


def test_runs_due_without_catchup_never_start_after_end_date() -> None:
    due = make_timetable("@daily").runs_due(last=None, start_date=at(2025, 1, 1), end_date=at(2025, 1, 5),
                                            now=at(2025, 2, 1), catchup=False)
    assert due == []


def test_timedelta_without_catchup_skips_to_the_delta_ending_at_now_rounded_on_the_epoch() -> None:
    due = make_timetable(dt.timedelta(hours=3)).runs_due(last=None, start_date=at(2025, 1, 1, 0, 20), end_date=None,
                                                         now=at(2025, 1, 2, 7, 30), catchup=False)
    assert due == [DataInterval(at(2025, 1, 2, 3), at(2025, 1, 2, 6))]


def test_timedelta_without_catchup_keeps_a_start_date_later_than_the_skip() -> None:
    timetable = make_timetable(dt.timedelta(hours=3))
    first = timetable.next_after(None, start_date=at(2025, 1, 2, 4, 20))
    assert first is not None
    assert timetable.skip_to_latest(first, now=at(2025, 1, 2, 7, 30)) == first


@pytest.mark.parametrize(("schedule", "logical", "interval"), [
    ("@daily", at(2025, 1, 25, 1), (at(2025, 1, 24), at(2025, 1, 25))),
    ("@daily", at(2025, 1, 25), (at(2025, 1, 24), at(2025, 1, 25))),
    ("@hourly", at(2025, 1, 2, 5), (at(2025, 1, 2, 4), at(2025, 1, 2, 5))),
    (dt.timedelta(hours=6), at(2025, 1, 2, 5), (at(2025, 1, 1, 23), at(2025, 1, 2, 5))),
    ("@once", at(2025, 1, 2, 5), (at(2025, 1, 2, 5), at(2025, 1, 2, 5))),
    (None, at(2025, 1, 2, 5), (at(2025, 1, 2, 5), at(2025, 1, 2, 5))),
], ids=["daily-between-ticks", "daily-on-a-tick", "hourly", "timedelta", "once", "none"])
def test_manual_data_interval_is_airflows(schedule: object, logical: dt.datetime,
                                          interval: tuple[dt.datetime, dt.datetime]) -> None:
    assert make_timetable(schedule).infer_manual_data_interval(logical) == DataInterval(*interval)
