"""Param and ParamsDict: defaults, JSON-schema validation, conf overriding, errors naming the param."""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.authoring.dag import DAG
from nbflow.authoring.params import Param, ParamsDict
from nbflow.exceptions import ParamValidationError
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator
from tests.authoring.helpers import run


def test_param_with_a_valid_default_resolves_to_it() -> None:
    assert Param(5, type="integer", minimum=1).resolve(name="n") == 5


@pytest.mark.parametrize(("param", "value", "why"), [
    (Param(5, type="integer"), "five", "is not of type 'integer'"),
    (Param(5, type="integer", minimum=1), 0, "less than the minimum of 1"),
    (Param("a", enum=["a", "b"]), "c", "is not one of"),
    (Param("x", type="string", maxLength=3), "long!", "is too long"),
    (Param("2025-01-01", type="string", format="date"), "not a date", "is not a 'date'"),
])
def test_value_breaking_the_schema_is_an_error_naming_param_and_rule(param: Param, value: object,
                                                                      why: str) -> None:
    with pytest.raises(ParamValidationError, match=f"param 'p' = .* is invalid: .*{why}"):
        param.resolve(value, name="p")


def test_param_without_default_or_value_says_to_pass_it() -> None:
    with pytest.raises(ParamValidationError, match="'needed' has no value.*conf"):
        Param(type="string").resolve(name="needed")


def test_params_dict_reads_values_and_keeps_params() -> None:
    params = ParamsDict({"a": 1, "b": Param("x", enum=["x", "y"])})
    assert dict(params) == {"a": 1, "b": "x"}
    params["b"] = "y"
    assert params.get_param("b").schema == {"enum": ["x", "y"]}, "assigning a value keeps the schema"


def test_params_dict_validate_applies_overrides_and_keeps_extra_conf() -> None:
    params = ParamsDict({"a": Param(1, type="integer"), "b": "text"})
    assert params.validate({"a": 2, "extra": True}) == {"a": 2, "b": "text", "extra": True}


def test_run_conf_overrides_dag_params(tmp_path: Path) -> None:
    with DAG("conf_wins", params={"name": Param("world", type="string"), "times": 1}) as d:
        PythonOperator(task_id="say", python_callable=lambda params: f"{params['name']} x{params['times']}")
    assert run(d, tmp_path).xcom("say") == "world x1"
    assert run(d, tmp_path / "2", conf={"name": "conf", "times": 3}).xcom("say") == "conf x3"


def test_invalid_conf_fails_the_run_before_any_task_naming_the_param(tmp_path: Path) -> None:
    with DAG("conf_bad", params={"limit": Param(10, type="integer", minimum=1)}) as d:
        PythonOperator(task_id="never", python_callable=lambda: None)
    ran = run(d, tmp_path, conf={"limit": -1})
    assert ran.state == "failed"
    assert "DAG 'conf_bad'" in (ran.result.error or "") and "'limit'" in (ran.result.error or "")
    assert not (tmp_path / "logs").exists()


def test_task_params_reach_templates_and_conf_overrides_them(tmp_path: Path) -> None:
    with DAG("task_params", params={"dag_level": "d"}) as d:
        BashOperator(task_id="echo", bash_command="echo {{ params.dag_level }} {{ params.mine }}",
                     params={"mine": "task"})
    assert run(d, tmp_path).xcom("echo") == "d task"
    assert run(d, tmp_path / "2", conf={"mine": "conf"}).xcom("echo") == "d conf"


def test_task_param_over_dag_param_of_the_same_name(tmp_path: Path) -> None:
    with DAG("shadow", params={"x": "dag"}) as d:
        BashOperator(task_id="echo", bash_command="echo {{ params.x }}", params={"x": "task"})
    assert run(d, tmp_path).xcom("echo") == "task"


def test_conf_breaking_a_task_param_schema_fails_that_task_naming_it(tmp_path: Path) -> None:
    with DAG("task_param_bad") as d:
        BashOperator(task_id="echo", bash_command="echo {{ params.n }}", params={"n": Param(1, type="integer")},
                     retries=2, retry_delay=0)
    ran = run(d, tmp_path, conf={"n": "one"})
    assert ran.states == {"echo": "failed"}
    assert ran.row("echo")["try_number"] == 1, "a bad param is not retried"
    assert "task 'echo': param 'n'" in ran.log("echo")


def test_default_args_params_reach_the_task(tmp_path: Path) -> None:
    with DAG("default_params", default_args={"params": {"region": "eu"}}) as d:
        BashOperator(task_id="echo", bash_command="echo {{ params.region }}")
    assert run(d, tmp_path).xcom("echo") == "eu"
