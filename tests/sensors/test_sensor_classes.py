"""Each sensor class against real files, real commands and the real clock, run in process (`dags test`'s engine)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nbflow.authoring.dag import DAG
from nbflow.decorators import task
from nbflow.exceptions import DagDefinitionError
from nbflow.operators.python import PythonOperator
from nbflow.sensors.base import BaseSensorOperator, PokeReturnValue
from nbflow.sensors.bash import BashSensor
from nbflow.sensors.date_time import DateTimeSensor, DateTimeSensorAsync
from nbflow.sensors.filesystem import FileSensor, FileSensorAsync
from nbflow.sensors.python import PythonSensor
from nbflow.sensors.time_delta import TimeDeltaSensor, TimeDeltaSensorAsync
from nbflow.sensors.time_sensor import TimeSensor, TimeSensorAsync
from nbflow.sensors.weekday import DayOfWeekSensor, WeekDay
from tests.authoring.helpers import run

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(autouse=True)
def home(nbflow_env):
    return nbflow_env


def sensing(sensor_class, tmp_path: Path, **kwargs):
    with DAG("sensing", schedule=None) as dag:
        sensor_class(task_id="sense", poke_interval=0.05, timeout=kwargs.pop("timeout", 0.5), **kwargs)
    return run(dag, tmp_path)


def test_python_sensor_succeeds_once_its_function_returns_true(tmp_path: Path) -> None:
    calls = []

    def third_time(**_):
        calls.append(1)
        return len(calls) >= 3

    assert sensing(PythonSensor, tmp_path, python_callable=third_time).states == {"sense": "success"}
    assert len(calls) == 3


def test_python_sensor_pushes_the_xcom_value_of_a_poke_return_value(tmp_path: Path) -> None:
    ran = sensing(PythonSensor, tmp_path, python_callable=lambda: PokeReturnValue(True, {"rows": 3}))
    assert ran.xcom("sense") == {"rows": 3}


def test_file_sensor_waits_for_a_real_file(tmp_path: Path) -> None:
    target = tmp_path / "in" / "data.csv"
    assert sensing(FileSensor, tmp_path, filepath=str(target)).states == {"sense": "failed"}
    target.parent.mkdir()
    target.write_text("a,b\n")
    assert sensing(FileSensor, tmp_path, filepath=str(target)).states == {"sense": "success"}


def test_file_sensor_globs_recursively_and_counts_a_folder_only_once_it_holds_a_file(tmp_path: Path) -> None:
    (tmp_path / "drop" / "2025" / "01").mkdir(parents=True)
    pattern = str(tmp_path / "drop" / "**" / "*.csv")
    assert sensing(FileSensor, tmp_path, filepath=str(tmp_path / "drop")).states == {"sense": "failed"}
    (tmp_path / "drop" / "2025" / "01" / "day.csv").write_text("x")
    assert sensing(FileSensor, tmp_path, filepath=pattern, recursive=True).states == {"sense": "success"}
    assert sensing(FileSensor, tmp_path, filepath=str(tmp_path / "drop")).states == {"sense": "success"}


def test_file_sensor_reads_the_path_under_its_connections_base_path(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "ready.flag").write_text("")
    monkeypatch.setenv("NBFLOW_CONN_MY_FS", f'{{"conn_type": "fs", "extra": {{"path": "{tmp_path / "base"}"}}}}')
    assert sensing(FileSensor, tmp_path, filepath="ready.flag", fs_conn_id="my_fs").states == {"sense": "success"}


def test_bash_sensor_succeeds_on_exit_zero_and_pokes_again_otherwise(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    assert sensing(BashSensor, tmp_path, bash_command=f"test -e {flag}").states == {"sense": "failed"}
    flag.write_text("")
    assert sensing(BashSensor, tmp_path, bash_command=f"test -e {flag}").states == {"sense": "success"}


def test_bash_sensor_fails_at_once_on_an_exit_code_other_than_retry_exit_code(tmp_path: Path) -> None:
    ran = sensing(BashSensor, tmp_path, bash_command="exit 3", retry_exit_code=1, timeout=60)
    assert ran.states == {"sense": "failed"}
    assert "command exited with 3, not 0 or retry_exit_code 1" in ran.log("sense")


def test_time_delta_sensor_waits_until_the_interval_end_plus_delta(tmp_path: Path) -> None:
    with DAG("sensing", schedule=None) as dag:
        TimeDeltaSensor(task_id="soon", delta=dt.timedelta(seconds=0.3), poke_interval=0.05, timeout=30)
        TimeDeltaSensor(task_id="tomorrow", delta=dt.timedelta(days=1), poke_interval=0.05, timeout=0.3)
    ran = run(dag, tmp_path, logical_date=dt.datetime.now(dt.timezone.utc))
    assert ran.states == {"soon": "success", "tomorrow": "failed"}


def test_time_sensor_compares_the_time_of_day(tmp_path: Path) -> None:
    assert sensing(TimeSensor, tmp_path, target_time=dt.time(0, 0)).states == {"sense": "success"}
    assert sensing(TimeSensor, tmp_path, target_time=dt.time(23, 59, 59, 999999)).states == {"sense": "failed"}


def test_date_time_sensor_renders_its_target_and_waits_for_it(tmp_path: Path) -> None:
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=0.3)).isoformat()
    assert sensing(DateTimeSensor, tmp_path, target_time=soon, timeout=30).states == {"sense": "success"}
    with DAG("sensing", schedule=None) as dag:
        DateTimeSensor(task_id="sense", target_time="{{ macros.ds_add(ds, 2) }}", poke_interval=0.05, timeout=0.3)
    ran = run(dag, tmp_path, logical_date=dt.datetime.now(dt.timezone.utc))
    assert ran.states == {"sense": "failed"}
    assert "checking whether it is past " + (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=2)).isoformat() in ran.log("sense")


def test_day_of_week_sensor_matches_todays_day_or_the_logical_dates(tmp_path: Path) -> None:
    today = WeekDay(dt.datetime.now(dt.timezone.utc).isoweekday())
    other = WeekDay(today % 7 + 1)
    assert sensing(DayOfWeekSensor, tmp_path, week_day=today).states == {"sense": "success"}
    assert sensing(DayOfWeekSensor, tmp_path, week_day={other.name.title()}).states == {"sense": "failed"}
    with DAG("sensing", schedule=None) as dag:
        DayOfWeekSensor(task_id="sense", week_day="Saturday", use_task_logical_date=True, timeout=0.2,
                        poke_interval=0.05)
    assert run(dag, tmp_path, logical_date=dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)).states == {
        "sense": "success"}


def test_an_unknown_week_day_is_a_definition_error_naming_it() -> None:
    with pytest.raises(DagDefinitionError, match="invalid week day 'Caturday'"):
        DayOfWeekSensor(task_id="sense", week_day="Caturday")


@pytest.mark.parametrize("sensor_class, kwargs", [
    (FileSensorAsync, {"filepath": "x"}), (TimeSensorAsync, {"target_time": dt.time(1)}),
    (TimeDeltaSensorAsync, {"delta": dt.timedelta(1)}), (DateTimeSensorAsync, {"target_time": NOW}),
])
def test_async_variants_wait_in_reschedule_mode(sensor_class, kwargs) -> None:
    sensor = sensor_class(task_id="sense", **kwargs)
    assert sensor.deferrable and sensor.mode == "reschedule"


def test_a_reschedule_sensor_in_process_pokes_again_as_the_same_try_and_times_out(tmp_path: Path) -> None:
    with DAG("sensing", schedule=None) as dag:
        PythonSensor(task_id="sense", python_callable=lambda: False, mode="reschedule", poke_interval=0.05,
                     timeout=0.4, retries=3)
    ran = run(dag, tmp_path)
    assert ran.states == {"sense": "failed"}
    log = ran.log("sense")
    assert log.count("[nbflow] rescheduled to") >= 1 and "since its first poke" in log


def test_task_sensor_decorator_pokes_the_function_and_pushes_its_value(tmp_path: Path) -> None:
    flag = tmp_path / "flag"

    with DAG("sensing", schedule=None) as dag:
        @task.sensor(poke_interval=0.05, timeout=30, mode="reschedule")
        def wait_for_flag() -> PokeReturnValue:
            return PokeReturnValue(flag.exists(), xcom_value="flag seen")

        PythonOperator(task_id="raise_flag", python_callable=lambda: flag.write_text("up"))
        wait_for_flag()
    ran = run(dag, tmp_path)
    assert ran.states == {"raise_flag": "success", "wait_for_flag": "success"}
    assert ran.xcom("wait_for_flag") == "flag seen"


def broken():
    raise OSError("disk gone")


def test_never_fail_skips_when_a_poke_raises_and_soft_fail_does_not(tmp_path: Path) -> None:
    assert sensing(PythonSensor, tmp_path, python_callable=broken, never_fail=True).states == {"sense": "skipped"}
    assert sensing(PythonSensor, tmp_path, python_callable=broken, soft_fail=True).states == {"sense": "failed"}


def test_soft_fail_skips_when_a_poke_raises_a_fail_exception(tmp_path: Path) -> None:
    ran = sensing(BashSensor, tmp_path, bash_command="exit 3", retry_exit_code=1, soft_fail=True)
    assert ran.states == {"sense": "skipped"}
    assert "skipped (soft_fail): sensor 'sense': command exited with 3" in ran.log("sense")


def test_silent_fail_pokes_again_after_an_error(tmp_path: Path) -> None:
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk gone")
        return True

    assert sensing(PythonSensor, tmp_path, python_callable=flaky, silent_fail=True).states == {"sense": "success"}
    assert len(calls) == 2


def test_a_bad_mode_or_negative_timeout_is_a_definition_error() -> None:
    with pytest.raises(DagDefinitionError, match="mode must be one of poke, reschedule"):
        BaseSensorOperator(task_id="s", mode="sometimes")
    with pytest.raises(DagDefinitionError, match="timeout must be a non-negative number"):
        BaseSensorOperator(task_id="s", timeout=-1)


def test_exponential_backoff_grows_the_wait_but_never_past_max_wait() -> None:
    sensor = BaseSensorOperator(task_id="s", poke_interval=2, exponential_backoff=True, max_wait=10, timeout=1000)
    waits = [sensor._next_poke_interval(NOW, 0.0, count) for count in range(1, 8)]
    assert waits[0] < waits[-1] and max(waits) <= 10
