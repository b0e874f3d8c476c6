"""Which context entries a python_callable gets: by its signature, read once per function but never stale,
and without computing the entries it does not ask for."""
from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

from nbflow.authoring.dag import DAG
from nbflow.authoring.timetables import DataInterval, DeltaTimetable
from nbflow.operators.python import PythonOperator, determine_kwargs
from nbflow.runtime.run_info import DagRunInfo
from tests.authoring.helpers import run

UTC = dt.timezone.utc
START = dt.datetime(2025, 1, 2, tzinfo=UTC)


class CountingTimetable(DeltaTimetable):
    """Daily; counts how often the runtime asks it for a run's neighbours (prev_ds, next_ds)."""

    asked = 0

    def previous_start(self, start: dt.datetime) -> dt.datetime | None:
        CountingTimetable.asked += 1
        return super().previous_start(start)

    def next_after(self, last: DataInterval | None, *, start_date: dt.datetime | None) -> DataInterval | None:
        CountingTimetable.asked += 1
        return super().next_after(last, start_date=start_date)


def scheduled_run(dag_id: str) -> DagRunInfo:
    return DagRunInfo(dag_id=dag_id, run_id="scheduled__1", logical_date=START, data_interval_start=START,
                      data_interval_end=START + dt.timedelta(days=1), run_type="scheduled")


def test_a_callable_that_does_not_name_prev_or_next_ds_never_asks_the_schedule(tmp_path: Path) -> None:
    with DAG("quiet", schedule=CountingTimetable(dt.timedelta(days=1)), start_date=START) as dag:
        PythonOperator(task_id="t", python_callable=lambda ds, ti: ds)
    CountingTimetable.asked = 0
    ran = run(dag, tmp_path, run_info=scheduled_run("quiet"))
    assert ran.xcom("t") == "2025-01-02"
    assert CountingTimetable.asked == 0


def test_a_callable_that_names_prev_ds_gets_it_from_the_schedule(tmp_path: Path) -> None:
    with DAG("asks", schedule=CountingTimetable(dt.timedelta(days=1)), start_date=START) as dag:
        PythonOperator(task_id="t", python_callable=lambda prev_ds, next_ds_nodash: [prev_ds, next_ds_nodash])
    ran = run(dag, tmp_path, run_info=scheduled_run("asks"))
    assert ran.xcom("t") == ["2025-01-01", "20250103"]


def test_a_function_whose_code_changed_is_read_again() -> None:
    def fn(ds):  # type: ignore[no-untyped-def]
        return ds

    context = {"ds": "2025-01-02", "run_id": "r"}
    assert determine_kwargs(fn, [], context) == {"ds": "2025-01-02"}
    fn.__code__ = (lambda run_id: run_id).__code__
    assert determine_kwargs(fn, [], context) == {"run_id": "r"}


def test_a_wrapped_function_is_given_what_the_wrapped_signature_names() -> None:
    def inner(ds: str, run_id: str) -> str:
        return ds

    @functools.wraps(inner)
    def outer(*args: Any, **kwargs: Any) -> Any:
        return inner(*args, **kwargs)

    context = {"ds": "2025-01-02", "run_id": "r", "ti": object()}
    assert determine_kwargs(outer, ["x"], context) == {"run_id": "r"}


def test_overrides_read_as_if_merged_into_the_context() -> None:
    context = {"ds": "d", "templates_dict": None}
    assert determine_kwargs(lambda templates_dict, ds: None, [], context, {"templates_dict": {"a": 1}}) == \
        {"templates_dict": {"a": 1}, "ds": "d"}
    assert determine_kwargs(lambda **kw: None, [], context, {"templates_dict": {"a": 1}}) == \
        {"ds": "d", "templates_dict": {"a": 1}}
