"""XCom values: what round-trips through serialisation, and what fails the task that returns it."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pendulum
import pytest

from nbflow.authoring.dag import DAG
from nbflow.decorators import task
from nbflow.exceptions import XComError
from nbflow.operators.python import PythonOperator
from nbflow.utils.serialization import deserialize, serialize
from tests.authoring.helpers import run


@dataclass
class Point:
    x: int
    y: float


@dataclass(frozen=True)
class Batch:
    name: str
    points: list[Point]
    when: dt.date


ROUND_TRIPS: list[Any] = [
    None, True, 3, 2.5, "text", [1, "a", None], {"k": {"nested": [1, 2]}},
    (1, "two", (3,)), {3, 1, 2}, frozenset({"a"}),
    dt.datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc),
    dt.datetime(2025, 7, 1, 12, tzinfo=ZoneInfo("Europe/Amsterdam")),
    pendulum.datetime(2025, 1, 2, 3, tz="Asia/Tokyo"),
    dt.datetime(2025, 1, 2, 3, 4),  # naive stays naive
    dt.date(2025, 1, 2), dt.timedelta(hours=1, microseconds=5),
    Point(1, 2.5), Batch("b", [Point(0, 0.0)], dt.date(2025, 1, 1)),
    {"mixed": [Point(1, 1.0), (dt.date(2025, 1, 1),), {1}]},
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=lambda v: type(v).__name__)
def test_value_round_trips(value: Any) -> None:
    back = deserialize(serialize(value))
    assert back == value
    assert type(back) is type(value) or isinstance(value, pendulum.DateTime)


def test_aware_datetime_keeps_its_offset() -> None:
    value = dt.datetime(2025, 7, 1, 12, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert deserialize(serialize(value)).utcoffset() == dt.timedelta(hours=2)


def test_values_round_trip_between_tasks(tmp_path: Path) -> None:
    with DAG("xcom_types") as d:
        @task
        def make() -> Any:
            return {"batch": Batch("b", [Point(1, 2.0)], dt.date(2025, 1, 1)), "ids": {3, 4}, "pair": (1, 2),
                    "at": dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)}

        @task
        def check(value: Any) -> list[str]:
            return [type(value["batch"]).__name__, type(value["batch"].points[0]).__name__,
                    type(value["ids"]).__name__, type(value["pair"]).__name__, value["at"].isoformat()]

        check(make())
    ran = run(d, tmp_path)
    assert ran.xcom("check") == ["Batch", "Point", "set", "tuple", "2025-01-02T00:00:00+00:00"]


def test_non_serialisable_return_value_fails_the_task_naming_task_and_type(tmp_path: Path) -> None:
    class Connection:
        pass

    with DAG("unserialisable") as d:
        PythonOperator(task_id="leaky", python_callable=lambda: {"conn": Connection()}, retries=3, retry_delay=0)
    ran = run(d, tmp_path)
    assert ran.states == {"leaky": "failed"}
    assert ran.row("leaky")["try_number"] == 1, "serialisation errors are not retried"
    log = ran.log("leaky")
    assert "task 'leaky' XCom 'return_value'" in log
    assert "Connection" in log and "cannot store a value of type" in log


def test_non_string_dict_key_fails_naming_the_key(tmp_path: Path) -> None:
    with DAG("int_keys") as d:
        PythonOperator(task_id="keys", python_callable=lambda: {1: "a"})
    ran = run(d, tmp_path)
    assert ran.states == {"keys": "failed"}
    assert "dict key 1 is a int" in ran.log("keys")


def test_value_over_the_size_limit_fails_the_task(tmp_path: Path) -> None:
    with DAG("too_big") as d:
        PythonOperator(task_id="big", python_callable=lambda: "x" * 5000)
        PythonOperator(task_id="small", python_callable=lambda: "x" * 10)
    ran = run(d, tmp_path, max_xcom_size=1000)
    assert ran.states == {"big": "failed", "small": "success"}
    assert "task 'big' XCom 'return_value': XCom value is 5,002 bytes, over the limit of 1,000" in ran.log("big")


def test_size_limit_applies_to_explicit_pushes_too() -> None:
    with pytest.raises(XComError, match="over the limit"):
        serialize(list(range(1000)), where="task 't' XCom 'k'", max_size=100)


def test_a_dataclass_whose_class_is_gone_comes_back_as_its_fields() -> None:
    text = serialize(Point(1, 2.0)).replace("test_inprocess_xcom:Point", "no_such_module_here:Point")
    assert deserialize(text) == {"x": 1, "y": 2.0}
