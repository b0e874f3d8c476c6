"""DAG: ids, documentation, defaults reaching operators, params, `@dag`, dates, limits."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pendulum
import pytest

from nbflow.authoring.dag import DAG, dag
from nbflow.authoring.params import Param
from nbflow.decorators import task
from nbflow.exceptions import DagDefinitionError, ParamValidationError
from nbflow.operators.bash import BashOperator
from nbflow.operators.empty import EmptyOperator
from nbflow.operators.python import PythonOperator
from tests.authoring.helpers import load_dag, run
from tests.conftest import write_dag

UTC = dt.timezone.utc


@pytest.mark.parametrize("dag_id", ["etl", "etl_daily-v2.1", "A" * 250])
def test_valid_dag_ids_are_accepted(dag_id: str) -> None:
    assert DAG(dag_id).dag_id == dag_id


@pytest.mark.parametrize("dag_id", ["", "has space", "slash/ed", "x" * 251, None, 3])
def test_invalid_dag_id_is_a_definition_error_naming_it(dag_id: object) -> None:
    with pytest.raises(DagDefinitionError, match="dag_id"):
        DAG(dag_id)  # type: ignore[arg-type]


def test_description_tags_and_doc_md_are_kept() -> None:
    d = DAG("documented", description="loads things", tags=["b", "a", "b"], doc_md="# Loads\nthings")
    assert d.description == "loads things"
    assert d.tags == ["a", "b"]
    assert d.doc_md == "# Loads\nthings"


def test_default_args_reach_every_operator_kind() -> None:
    defaults = {"retries": 3, "retry_delay": dt.timedelta(seconds=7), "owner": "data", "pool": "small",
                "priority_weight": 5, "email": "a@example.com; b@example.com", "trigger_rule": "all_done"}
    with DAG("defaults", default_args=defaults) as d:
        empty = EmptyOperator(task_id="empty")
        bash = BashOperator(task_id="bash", bash_command="true")
        py = PythonOperator(task_id="py", python_callable=lambda: None, retries=0)
    for op in (empty, bash):
        assert (op.retries, op.retry_delay, op.owner, op.pool, op.priority_weight) == \
            (3, dt.timedelta(seconds=7), "data", "small", 5)
        assert op.email == ["a@example.com", "b@example.com"]
        assert op.trigger_rule == "all_done"
    assert py.retries == 0, "an argument given to the operator wins over default_args"
    assert d.default_args == defaults


def test_default_args_fill_arguments_only_a_subclass_takes() -> None:
    with DAG("subclass_defaults", default_args={"bash_command": "echo from defaults", "append_env": True,
                                                 "python_callable": len}):
        bash = BashOperator(task_id="bash")
        empty = EmptyOperator(task_id="empty")
    assert bash.bash_command == "echo from defaults"
    assert bash.append_env is True
    assert not hasattr(empty, "bash_command"), "arguments EmptyOperator does not take are not set on it"


def test_task_default_args_override_dag_default_args() -> None:
    with DAG("layered", default_args={"retries": 1, "owner": "dag"}):
        op = EmptyOperator(task_id="op", default_args={"retries": 4})
    assert (op.retries, op.owner) == (4, "dag")


def test_dag_params_and_default_args_params_merge() -> None:
    d = DAG("params", default_args={"params": {"a": 1, "b": 1}}, params={"b": 2, "c": Param(3, type="integer")})
    assert dict(d.params) == {"a": 1, "b": 2, "c": 3}
    assert d.params.get_param("c").schema == {"type": "integer"}


def test_params_given_as_a_params_dict_keep_their_schema() -> None:
    base = DAG("first", params={"n": Param(5, type="integer", minimum=1)})
    d = DAG("second", params=base.params)
    with pytest.raises(ParamValidationError, match="'n'"):
        d.params.validate({"n": 0})


def test_context_manager_assigns_tasks_and_nested_dags_stay_apart() -> None:
    with DAG("outer") as outer:
        a = EmptyOperator(task_id="a")
        with DAG("inner") as inner:
            b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
    assert outer.task_ids == ["a", "c"] and inner.task_ids == ["b"]
    assert a.dag is outer and b.dag is inner and c.dag is outer


def test_operator_outside_a_dag_has_none_until_given_one() -> None:
    op = EmptyOperator(task_id="loose")
    assert not op.has_dag
    d = DAG("later")
    op.dag = d
    assert d.get_task("loose") is op


def test_dag_decorator_builds_a_dag_named_after_the_function() -> None:
    @dag(schedule="@daily", start_date=dt.datetime(2025, 1, 1), tags=["x"])
    def nightly_load() -> None:
        """Loads every night."""
        EmptyOperator(task_id="only")

    built = nightly_load()
    assert built.dag_id == "nightly_load"
    assert built.task_ids == ["only"]
    assert built.doc_md == "Loads every night."
    assert built.tags == ["x"]


def test_dag_decorator_turns_function_arguments_into_params(tmp_path: Path) -> None:
    @dag(dag_id="greeter")
    def build(name: str = "world", times: int = 2) -> None:
        @task
        def greet(who: str, n: int) -> str:
            return f"hello {who} " * n

        greet(name, times)

    d = build(times=1)
    assert dict(d.params) == {"name": "world", "times": 1}
    ran = run(d, tmp_path, conf={"name": "nbflow"})
    assert ran.state == "success"
    assert ran.xcom("greet") == "hello nbflow "


def test_dag_decorator_keeps_param_schema_when_the_function_has_a_default(tmp_path: Path) -> None:
    @dag(params={"n": Param(5, type="integer", minimum=1)})
    def typed(n: int = 5) -> None:
        EmptyOperator(task_id="t")

    d = typed()
    assert d.params["n"] == 5
    ran = run(d, tmp_path, conf={"n": 0})
    assert ran.state == "failed"
    assert "'n'" in (ran.result.error or "")


def test_dag_decorator_file_is_found_without_a_module_global(tmp_path: Path) -> None:
    path = write_dag(tmp_path / "dags", "decorated.py", """
        from nbflow.decorators import dag, task

        @dag(dag_id="decorated_file")
        def pipeline():
            @task
            def one():
                return 1
            one()

        pipeline()
    """)
    d = load_dag(path, "decorated_file")
    assert d.task_ids == ["one"]
    assert d.fileloc == str(path)


@pytest.mark.parametrize("start", [
    pendulum.datetime(2025, 3, 1, 6, tz="Europe/Amsterdam"),
    dt.datetime(2025, 3, 1, 6, tzinfo=ZoneInfo("Europe/Amsterdam")),
], ids=["pendulum", "zoneinfo"])
def test_aware_start_date_from_any_library_becomes_utc(start: dt.datetime) -> None:
    d = DAG("aware", start_date=start, end_date=start + dt.timedelta(days=3))
    assert d.start_date == dt.datetime(2025, 3, 1, 5, tzinfo=UTC)
    assert d.end_date == dt.datetime(2025, 3, 4, 5, tzinfo=UTC)
    assert type(d.start_date) is dt.datetime


def test_naive_start_date_is_taken_as_utc() -> None:
    d = DAG("naive", start_date=dt.datetime(2025, 3, 1))
    assert d.start_date == dt.datetime(2025, 3, 1, tzinfo=UTC)


def test_start_date_from_default_args_reaches_dag_and_tasks() -> None:
    with DAG("from_defaults", default_args={"start_date": pendulum.datetime(2024, 5, 1, tz="UTC")}) as d:
        op = EmptyOperator(task_id="op")
    assert d.start_date == op.start_date == dt.datetime(2024, 5, 1, tzinfo=UTC)


def test_bad_start_date_string_names_the_dag() -> None:
    with pytest.raises(Exception, match="DAG 'bad_date'"):
        DAG("bad_date", start_date="yesterday")  # type: ignore[arg-type]


def test_limits_and_catchup_are_kept() -> None:
    d = DAG("limits", max_active_runs=2, max_active_tasks=3, catchup=True)
    assert (d.max_active_runs, d.max_active_tasks, d.catchup) == (2, 3, True)
    assert DAG("defaults_off").catchup is False


def test_airflow_2_only_dag_arguments_are_accepted() -> None:
    d = DAG("old_style", schedule_interval="@daily", concurrency=4, orientation="TB", default_view="graph",
            sla_miss_callback=lambda *a: None)
    assert d.schedule == "@daily"
    assert d.max_active_tasks == 4
