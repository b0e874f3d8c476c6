"""Templating: Airflow's context variables and macros, user macros and filters, errors, native objects."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from nbflow.authoring.dag import DAG
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator
from nbflow.runtime.inprocess import make_run_info
from nbflow.runtime.run_info import DagRunInfo
from tests.authoring.helpers import run

UTC = dt.timezone.utc
DAY = dt.datetime(2025, 1, 2, tzinfo=UTC)


def render(template: str, tmp_path: Path, *, run_info: DagRunInfo | None = None, **dag_kwargs: Any) -> Any:
    """What `template` renders to as a PythonOperator's op_args[0] in a @daily DAG."""
    dag_kwargs.setdefault("schedule", "@daily")
    dag_kwargs.setdefault("start_date", dt.datetime(2025, 1, 1))
    with DAG("templates", **dag_kwargs) as d:
        PythonOperator(task_id="show", python_callable=lambda value: value, op_args=[template])
    ran = run(d, tmp_path, run_info=run_info)
    assert ran.states == {"show": "success"}, ran.log("show")
    return ran.xcom("show")


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ ds }}", "2025-01-02"),
    ("{{ ds_nodash }}", "20250102"),
    ("{{ ts }}", "2025-01-02T00:00:00+00:00"),
    ("{{ ts_nodash }}", "20250102T000000"),
    ("{{ logical_date.year }}-{{ logical_date.day }}", "2025-2"),
    ("{{ data_interval_start | ds }}..{{ data_interval_end | ds }}", "2025-01-01..2025-01-02"),
    ("{{ dag.dag_id }}/{{ task.task_id }}/{{ ti.task_id }}/{{ ti.try_number }}", "templates/show/show/1"),
    ("{{ macros.ds_add(ds, 5) }} {{ macros.ds_add(ds, -2) }}", "2025-01-07 2024-12-31"),
    ("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%y') }}", "02/01/25"),
    ("{{ (macros.datetime(2025, 1, 1) + macros.timedelta(days=3)).strftime('%a') }}", "Sat"),
    ("{{ yesterday_ds }} {{ tomorrow_ds }}", "2025-01-01 2025-01-03"),
    ("{{ task_instance_key_str }}", "templates__show__20250102"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("{{") else None)
def test_context_variable_renders(tmp_path: Path, template: str, expected: str) -> None:
    assert render(template, tmp_path) == expected


def test_run_id_and_dag_run_conf_render(tmp_path: Path) -> None:
    with DAG("conf_templ") as d:
        BashOperator(task_id="b", bash_command="echo {{ run_id }} {{ dag_run.conf['who'] }} {{ dag_run.run_type }}")
    ran = run(d, tmp_path, conf={"who": "me"})
    assert ran.xcom("b") == f"{ran.result.run.run_id} me manual"


def test_params_render(tmp_path: Path) -> None:
    assert render("{{ params.a }}+{{ params['b'] }}", tmp_path, params={"a": 1, "b": "two"}) == "1+two"


def test_prev_and_next_ds_are_set_for_a_scheduled_run(tmp_path: Path) -> None:
    info = DagRunInfo(dag_id="templates", run_id="scheduled__2025-01-02", logical_date=DAY,
                      data_interval_start=DAY, data_interval_end=DAY + dt.timedelta(days=1), run_type="scheduled")
    assert render("{{ prev_ds }} {{ next_ds }} {{ next_ds_nodash }}", tmp_path, run_info=info) == \
        "2025-01-01 2025-01-03 20250103"


def test_prev_and_next_ds_are_none_for_a_manual_run(tmp_path: Path) -> None:
    assert render("{{ prev_ds }} {{ next_ds }}", tmp_path) == "None None"


def test_manual_run_of_a_scheduled_dag_covers_the_last_complete_interval(tmp_path: Path) -> None:
    with DAG("interval", schedule="@hourly", start_date=dt.datetime(2025, 1, 1)) as d:
        pass
    info = make_run_info(d, dt.datetime(2025, 1, 2, 5, tzinfo=UTC), {})
    assert (info.data_interval_start, info.data_interval_end) == \
        (dt.datetime(2025, 1, 2, 4, tzinfo=UTC), dt.datetime(2025, 1, 2, 5, tzinfo=UTC))
    assert info.run_id == "manual__2025-01-02T05:00:00+00:00"


def test_user_defined_macros_and_filters(tmp_path: Path) -> None:
    result = render("{{ project }} {{ ds | shout }} {{ double(21) }}", tmp_path,
                    user_defined_macros={"project": "nbflow", "double": lambda n: n * 2},
                    user_defined_filters={"shout": lambda s: s.upper() + "!"})
    assert result == "nbflow 2025-01-02! 42"


def test_undefined_variable_fails_the_task_naming_task_and_field(tmp_path: Path) -> None:
    with DAG("undefined") as d:
        BashOperator(task_id="b", bash_command="echo {{ no_such_thing }}", retries=2, retry_delay=0)
    ran = run(d, tmp_path)
    assert ran.states == {"b": "failed"}
    assert ran.row("b")["try_number"] == 1, "a template error is not retried"
    assert "task 'b': template field 'bash_command': 'no_such_thing' is undefined" in ran.log("b")


def test_template_syntax_error_names_task_field_and_line(tmp_path: Path) -> None:
    with DAG("syntax") as d:
        BashOperator(task_id="b", bash_command="echo ok\necho {{ ds ")
    ran = run(d, tmp_path)
    assert ran.states == {"b": "failed"}
    assert "task 'b': template field 'bash_command' has a syntax error at line 2" in ran.log("b")


def test_rendering_leaves_the_parsed_task_unchanged(tmp_path: Path) -> None:
    with DAG("pristine") as d:
        op = BashOperator(task_id="b", bash_command="echo {{ ds }}", env={"D": "{{ ds }}"})
    run(d, tmp_path)
    assert op.bash_command == "echo {{ ds }}" and op.env == {"D": "{{ ds }}"}


def test_render_template_as_native_obj_keeps_python_types(tmp_path: Path) -> None:
    assert render("{{ [1, 2] + [params.n] }}", tmp_path, params={"n": 3},
                  render_template_as_native_obj=True) == [1, 2, 3]
    assert render("{{ [1, 2] }}", tmp_path / "text") == "[1, 2]"


def test_jinja_loops_and_filters_work(tmp_path: Path) -> None:
    assert render("{% for i in range(3) %}{{ i }}{% endfor %}|{{ 'a,b' | replace(',', ';') }}", tmp_path) == "012|a;b"


def test_variables_render_through_var_value_and_var_json(tmp_path: Path, nbflow_env: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_VAR_REGION", "eu-west")
    monkeypatch.setenv("NBFLOW_VAR_SETTINGS", '{"size": 3, "tags": ["a"]}')
    assert render("{{ var.value.region }} {{ var.json.settings.size }} {{ var.json.settings['tags'][0] }} "
                  "{{ var.value.get('absent', 'fallback') }}", tmp_path) == "eu-west 3 a fallback"


@pytest.mark.parametrize(("schedule", "start", "end", "expected"), [
    ("@monthly", dt.datetime(2025, 3, 1, tzinfo=UTC), dt.datetime(2025, 4, 1, tzinfo=UTC), "2025-02-01 2025-04-01"),
    ("0 6 * * 1-5", dt.datetime(2025, 1, 6, 6, tzinfo=UTC), dt.datetime(2025, 1, 7, 6, tzinfo=UTC),
     "2025-01-03 2025-01-07"),  # Monday's previous run is Friday's
    (dt.timedelta(hours=12), dt.datetime(2025, 1, 2, tzinfo=UTC), dt.datetime(2025, 1, 2, 12, tzinfo=UTC),
     "2025-01-01 2025-01-02"),
], ids=["monthly", "weekdays", "timedelta"])
def test_prev_and_next_ds_follow_the_schedule(tmp_path: Path, schedule: object, start: dt.datetime,
                                              end: dt.datetime, expected: str) -> None:
    info = DagRunInfo(dag_id="templates", run_id="scheduled__x", logical_date=start, data_interval_start=start,
                      data_interval_end=end, run_type="scheduled")
    assert render("{{ prev_ds }} {{ next_ds }}", tmp_path, run_info=info, schedule=schedule) == expected
