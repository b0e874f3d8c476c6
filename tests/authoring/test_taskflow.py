"""TaskFlow: `@task` and its kinds, XComArg passing, multiple_outputs, override, repeated calls."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nbflow.authoring.dag import DAG
from nbflow.authoring.xcom_arg import XComArg
from nbflow.decorators import task
from nbflow.exceptions import DagDefinitionError
from nbflow.operators.empty import EmptyOperator
from tests.authoring.helpers import run


def test_calling_a_task_returns_an_xcomarg_and_wires_the_dependency(tmp_path: Path) -> None:
    with DAG("flow") as d:
        @task
        def extract() -> list[int]:
            return [1, 2, 3]

        @task
        def total(values: list[int], offset: int = 0) -> int:
            return sum(values) + offset

        values = extract()
        result = total(values, offset=10)
    assert isinstance(values, XComArg) and values.operator.task_id == "extract"
    assert d.get_task("total").upstream_task_ids == {"extract"}
    ran = run(d, tmp_path)
    assert ran.state == "success"
    assert ran.xcom("total") == 16
    assert result.operator.task_id == "total"


def test_xcomarg_nested_in_containers_is_resolved(tmp_path: Path) -> None:
    with DAG("nested_args") as d:
        @task
        def one() -> int:
            return 1

        @task
        def show(payload: dict[str, Any]) -> dict[str, Any]:
            return payload

        show({"values": [one(), 2], "pair": (one(), "x")})
    ran = run(d, tmp_path)
    assert ran.xcom("show") == {"values": [1, 2], "pair": (1, "x")}
    assert d.get_task("show").upstream_task_ids == {"one", "one__1"}


def test_multiple_outputs_pushes_each_key(tmp_path: Path) -> None:
    with DAG("multi") as d:
        @task(multiple_outputs=True)
        def split() -> Any:
            return {"low": 1, "high": 9}

        @task
        def spread(low: int, high: int) -> int:
            return high - low

        parts = split()
        spread(parts["low"], parts["high"])
    ran = run(d, tmp_path)
    assert ran.xcom("split", "low") == 1 and ran.xcom("split", "high") == 9
    assert ran.xcom("split") == {"low": 1, "high": 9}
    assert ran.xcom("spread") == 8


def test_multiple_outputs_is_inferred_from_a_dict_return_annotation() -> None:
    with DAG("inferred"):
        @task
        def as_dict() -> dict[str, int]:
            return {}

        @task
        def as_list() -> list[int]:
            return []

        @task(multiple_outputs=False)
        def refused() -> dict[str, int]:
            return {}

        a, b, c = as_dict(), as_list(), refused()
    assert a.operator.multiple_outputs is True
    assert b.operator.multiple_outputs is False
    assert c.operator.multiple_outputs is False


def test_multiple_outputs_with_a_non_dict_result_fails_the_task(tmp_path: Path) -> None:
    with DAG("multi_bad") as d:
        @task(multiple_outputs=True)
        def not_a_dict() -> Any:
            return [1]

        not_a_dict()
    ran = run(d, tmp_path)
    assert ran.states == {"not_a_dict": "failed"}
    assert "multiple_outputs=True but returned list" in ran.log("not_a_dict")


def test_override_changes_task_id_and_arguments() -> None:
    with DAG("override") as d:
        @task(retries=1)
        def work() -> None:
            return None

        work.override(task_id="first", retries=3)()
        work()
    assert d.get_task("first").retries == 3
    assert d.get_task("work").retries == 1


def test_repeated_calls_get_numbered_suffixes() -> None:
    with DAG("repeats") as d:
        @task
        def step() -> None:
            return None

        step()
        step()
        step()
    assert d.task_ids == ["step", "step__1", "step__2"]


def test_repeated_calls_of_a_function_with_a_double_underscore_name_keep_the_name() -> None:
    with DAG("dunder_name") as d:
        @task
        def load__raw() -> None:
            return None

        load__raw()
        load__raw()
    assert d.task_ids == ["load__raw", "load__raw__1"]


def test_call_that_cannot_bind_is_a_definition_error() -> None:
    with DAG("bad_call"):
        @task
        def needs_two(a: int, b: int) -> int:
            return a + b

        with pytest.raises(DagDefinitionError, match="'needs_two'"):
            needs_two(1, 2, 3)


def test_context_values_reach_a_task_by_parameter_name(tmp_path: Path) -> None:
    with DAG("ctx_flow") as d:
        @task
        def when(ds: str | None = None, ti: Any = None, **context: Any) -> str:
            return f"{ds} {ti.task_id} {context['run_id']}"

        when()
    ran = run(d, tmp_path)
    assert ran.xcom("when") == f"2025-01-02 when {ran.result.run.run_id}"


def test_task_bash_runs_the_returned_command(tmp_path: Path) -> None:
    with DAG("bash_flow") as d:
        @task
        def name() -> str:
            return "nbflow"

        @task.bash(env={"GREETING": "hello"})
        def greet(who: str) -> str:
            return f'echo "$GREETING {who} {{{{ ds }}}}"'

        greet(name())
    ran = run(d, tmp_path)
    assert ran.state == "success"
    assert ran.xcom("greet") == "hello nbflow 2025-01-02"


def test_task_bash_returning_nothing_fails(tmp_path: Path) -> None:
    with DAG("bash_empty") as d:
        @task.bash
        def nothing() -> str:
            return ""

        nothing()
    ran = run(d, tmp_path)
    assert ran.states == {"nothing": "failed"}
    assert "non-empty command" in ran.log("nothing")


def test_task_branch_follows_the_returned_task(tmp_path: Path) -> None:
    with DAG("branch_flow") as d:
        @task.branch
        def choose(n: int) -> str:
            return "big" if n > 10 else "small"

        big, small = EmptyOperator(task_id="big"), EmptyOperator(task_id="small")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        choose(50) >> [big, small] >> join
    ran = run(d, tmp_path)
    assert ran.states == {"choose": "success", "big": "success", "small": "skipped", "join": "success"}


def test_task_short_circuit_skips_downstream_on_a_falsy_result(tmp_path: Path) -> None:
    with DAG("short_flow") as d:
        @task.short_circuit
        def has_data() -> bool:
            return False

        @task
        def process() -> int:
            return 1

        has_data() >> process()
    ran = run(d, tmp_path)
    assert ran.states == {"has_data": "success", "process": "skipped"}
    assert ran.state == "success"


def test_task_short_circuit_lets_downstream_run_on_a_truthy_result(tmp_path: Path) -> None:
    with DAG("short_true") as d:
        @task.short_circuit
        def has_data() -> list[int]:
            return [1]

        has_data() >> EmptyOperator(task_id="process")
    ran = run(d, tmp_path)
    assert ran.states == {"has_data": "success", "process": "success"}


def test_unknown_task_kind_names_it() -> None:
    with pytest.raises(Exception, match="@task.nonexistent"):
        task.nonexistent  # noqa: B018


def test_dag_param_passed_to_a_task_resolves_at_run_time(tmp_path: Path) -> None:
    from nbflow.authoring.dag import dag

    @dag(dag_id="param_flow")
    def build(limit: int = 3) -> None:
        @task
        def show(n: int) -> int:
            return n * 2

        show(limit)

    d = build()
    assert run(d, tmp_path).xcom("show") == 6
    assert run(d, tmp_path / "again", conf={"limit": 5}).xcom("show") == 10


def test_a_broken_task_kind_plugin_fails_only_its_own_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from nbflow.exceptions import NbflowException
    from nbflow.utils.registry import Registry

    group = "nbflow.test_kinds"
    found = [metadata.EntryPoint("broken", "nbflow_no_such_module:kind", group),
             metadata.EntryPoint("working", "json:dumps", group)]
    monkeypatch.setattr(metadata, "entry_points", lambda group: found)
    kinds: Registry[object] = Registry("task decorator", entry_points=group)
    import json
    assert kinds.get("working") is json.dumps
    with pytest.raises(NbflowException, match="'broken'.*nbflow_no_such_module:kind.*failed to load"):
        kinds.get("broken")
    with pytest.raises(KeyError, match="unknown task decorator 'missing'; known: .*working"):
        kinds.get("missing")
