"""Strings without template syntax skip Jinja only where Jinja would give them back unchanged."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2
import pytest

from nbflow.authoring.dag import DAG
from nbflow.authoring.templating import make_template_env
from nbflow.operators.python import PythonOperator
from tests.authoring.helpers import run

LITERALS = ["", "plain", "a\n", "\n\n", "two\nlines\n", "{ not a tag }", "a}b", "%}", "#}", "{", "}", "{ {", "100",
            "[1, 2]", "{'a': 1}", "  indented\n\tand tabbed  ", "ünïcødé ✓", "trailing space ", "a\r\nb", "a\rb\r",
            "50% off", "#hash", "<< ds >>", "[% if x %]y[% endif %]"]


@pytest.mark.parametrize("settings", [
    pytest.param({}, id="default"),
    pytest.param({"jinja_environment_kwargs": {"trim_blocks": True, "lstrip_blocks": True}}, id="trim"),
    pytest.param({"jinja_environment_kwargs": {"keep_trailing_newline": False}}, id="no-trailing-newline"),
    pytest.param({"jinja_environment_kwargs": {"newline_sequence": "\r\n"}}, id="crlf"),
    pytest.param({"jinja_environment_kwargs": {"variable_start_string": "<<", "variable_end_string": ">>"}},
                 id="delimiters"),
    pytest.param({"jinja_environment_kwargs": {"block_start_string": "[%", "block_end_string": "%]"}},
                 id="block-delimiters"),
    pytest.param({"render_template_as_native_obj": True}, id="native"),
])
def test_every_field_renders_as_jinja_renders_it(settings: dict[str, Any], tmp_path: Path) -> None:
    with DAG("literal", start_date=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc), **settings) as dag:
        task = PythonOperator(task_id="t", python_callable=lambda *args: list(args), op_args=list(LITERALS))
    env = make_template_env(dag)
    expected = [env.from_string(text).render(ds="2025-01-02", x=1) for text in LITERALS]
    work = task.prepare_for_execution()
    work.render_template_fields({"ds": "2025-01-02", "x": 1})
    assert work.op_args == expected
    assert [type(v) for v in work.op_args] == [type(v) for v in expected]


def test_an_environment_passed_in_decides_too() -> None:
    with DAG("given"):
        task = PythonOperator(task_id="t", python_callable=lambda: None, op_args=["a\n", "<< x >>", "1"])
    custom = jinja2.Environment(variable_start_string="<<", variable_end_string=">>", keep_trailing_newline=False)
    task.render_template_fields({"x": "X"}, jinja_env=custom)
    assert task.op_args == ["a", "X", "1"]
    native = jinja2.nativetypes.NativeEnvironment()
    assert task.render_template("1", {}, jinja_env=native) == 1


def test_a_task_with_plain_fields_never_builds_its_dags_environment(tmp_path: Path) -> None:
    with DAG("plain", jinja_environment_kwargs={"not_an_option": 1}) as broken:
        PythonOperator(task_id="t", python_callable=lambda a: a, op_args=["{{ ds }}"])
    assert run(broken, tmp_path).states == {"t": "failed"}, "a field with syntax still needs the environment"
    with DAG("plain2") as dag:
        PythonOperator(task_id="t", python_callable=lambda a, b: [a, b], op_args=["x", {"k": ["y"]}])
    ran = run(dag, tmp_path)
    assert ran.xcom("t") == ["x", {"k": ["y"]}]
    assert dag._template_env is None
