"""Dynamic task mapping: `.partial().expand()` and `.expand_kwargs()` on operators and `@task`s."""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.authoring.dag import DAG
from nbflow.decorators import task
from nbflow.exceptions import DagDefinitionError
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator
from nbflow.utils.task_group import TaskGroup
from tests.authoring.helpers import run


def test_operator_expanded_over_a_literal_list_runs_once_per_element(tmp_path: Path) -> None:
    with DAG("bash_map") as d:
        BashOperator.partial(task_id="echo", env={"PREFIX": "n="}).expand(
            bash_command=["echo $PREFIX 1", "echo $PREFIX 2", "echo $PREFIX 3"])
    ran = run(d, tmp_path)
    assert ran.states == {"echo[0]": "success", "echo[1]": "success", "echo[2]": "success"}
    assert [ran.xcom("echo", map_index=i) for i in range(3)] == ["n= 1", "n= 2", "n= 3"]


def test_each_mapped_instance_logs_under_its_map_index(tmp_path: Path) -> None:
    with DAG("map_logs") as d:
        @task
        def show(v: str) -> None:
            print(f"value is {v}")

        show.expand(v=["a", "b"])
    ran = run(d, tmp_path)
    for index, value in enumerate("ab"):
        path = ran.log_path("show", map_index=index)
        assert path.parent.name == f"map_index={index}" and path.name == "attempt=1.log"
        assert f"value is {value}" in path.read_text()


def test_task_expanded_over_an_upstream_xcom(tmp_path: Path) -> None:
    with DAG("xcom_map") as d:
        @task
        def files() -> list[str]:
            return ["a.csv", "b.csv"]

        @task
        def size(name: str, factor: int) -> int:
            return len(name) * factor

        size.partial(factor=10).expand(name=files())
    ran = run(d, tmp_path)
    assert ran.states == {"files": "success", "size[0]": "success", "size[1]": "success"}
    assert [ran.xcom("size", map_index=i) for i in (0, 1)] == [50, 50]
    assert d.get_task("size").upstream_task_ids == {"files"}


def test_operator_expanded_over_an_upstream_xcom(tmp_path: Path) -> None:
    with DAG("op_xcom_map") as d:
        numbers = PythonOperator(task_id="numbers", python_callable=lambda: [[1], [2, 3]])
        PythonOperator.partial(task_id="count", python_callable=lambda *xs: len(xs)).expand(
            op_args=numbers.output)
    ran = run(d, tmp_path)
    assert [ran.xcom("count", map_index=i) for i in (0, 1)] == [1, 2]


def test_downstream_of_a_mapped_task_receives_the_list_in_map_index_order(tmp_path: Path) -> None:
    with DAG("reduce") as d:
        @task
        def square(x: int) -> int:
            return x * x

        @task
        def collect(values: list[int]) -> list[int]:
            return list(values)

        collect(square.expand(x=[3, 1, 2]))
    ran = run(d, tmp_path)
    assert ran.xcom("collect") == [9, 1, 4]


def test_expanding_over_an_empty_list_skips_the_mapped_task_and_its_downstream(tmp_path: Path) -> None:
    with DAG("empty_map") as d:
        @task
        def nothing() -> list[int]:
            return []

        @task
        def each(x: int) -> int:
            return x

        @task
        def after(values: list[int]) -> int:
            return len(values)

        after(each.expand(x=nothing()))
    ran = run(d, tmp_path)
    assert ran.states == {"nothing": "success", "each": "skipped", "after": "skipped"}
    assert ran.state == "success"


def test_two_expanded_arguments_make_the_cross_product(tmp_path: Path) -> None:
    with DAG("product") as d:
        @task
        def pair(letter: str, number: int) -> str:
            return f"{letter}{number}"

        pair.expand(letter=["a", "b"], number=[1, 2, 3])
    ran = run(d, tmp_path)
    assert len(ran.states) == 6
    assert [ran.xcom("pair", map_index=i) for i in range(6)] == ["a1", "a2", "a3", "b1", "b2", "b3"]


def test_expand_kwargs_on_a_task_takes_one_dict_per_instance(tmp_path: Path) -> None:
    with DAG("kwargs_task") as d:
        @task
        def configs() -> list[dict[str, int]]:
            return [{"a": 1, "b": 2}, {"a": 10, "b": 20}]

        @task
        def add(a: int, b: int) -> int:
            return a + b

        add.expand_kwargs(configs())
    ran = run(d, tmp_path)
    assert [ran.xcom("add", map_index=i) for i in (0, 1)] == [3, 30]


def test_expand_kwargs_on_an_operator_over_a_literal_list(tmp_path: Path) -> None:
    with DAG("kwargs_op") as d:
        BashOperator.partial(task_id="cmd").expand_kwargs([
            {"bash_command": "echo $X", "env": {"X": "first"}},
            {"bash_command": "echo $X-again", "env": {"X": "second"}},
        ])
    ran = run(d, tmp_path)
    assert [ran.xcom("cmd", map_index=i) for i in (0, 1)] == ["first", "second-again"]


def test_partial_argument_from_an_upstream_xcom_reaches_every_instance(tmp_path: Path) -> None:
    with DAG("partial_xcom") as d:
        @task
        def base() -> int:
            return 100

        @task
        def plus(x: int, offset: int) -> int:
            return x + offset

        plus.partial(offset=base()).expand(x=[1, 2])
    ran = run(d, tmp_path)
    assert ran.state == "success", ran.result.tasks
    assert [ran.xcom("plus", map_index=i) for i in (0, 1)] == [101, 102]


def test_mapped_task_in_a_group_keeps_the_prefixed_id(tmp_path: Path) -> None:
    with DAG("group_map") as d:
        with TaskGroup("g"):
            @task
            def inc(x: int) -> int:
                return x + 1

            inc.expand(x=[1, 2])
    ran = run(d, tmp_path)
    assert ran.states == {"g.inc[0]": "success", "g.inc[1]": "success"}
    assert ran.xcom("g.inc", map_index=1) == 3


def test_mapped_instances_retry_on_their_own(tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    with DAG("map_retry") as d:
        @task(retries=1, retry_delay=0.01)
        def flaky(n: int, marker: str) -> int:
            import os
            if n == 1 and not os.path.exists(marker):
                open(marker, "w").close()
                raise RuntimeError("first try fails")
            return n

        flaky.partial(marker=str(marker)).expand(n=[0, 1])
    ran = run(d, tmp_path)
    assert ran.states == {"flaky[0]": "success", "flaky[1]": "success"}
    assert ran.row("flaky", 1)["try_number"] == 2 and ran.row("flaky", 0)["try_number"] == 1
    assert ran.log_path("flaky", attempt=2, map_index=1).exists()


def test_expanding_an_argument_the_operator_does_not_take_is_an_error() -> None:
    with DAG("bad_expand"):
        with pytest.raises(DagDefinitionError, match="no argument 'nope'"):
            BashOperator.partial(task_id="b").expand(nope=[1])


def test_expanding_a_scalar_is_an_error() -> None:
    with DAG("scalar_expand"):
        @task
        def f(x: int) -> int:
            return x

        with pytest.raises(DagDefinitionError, match="needs a list"):
            f.expand(x=3)


def test_expanding_over_an_upstream_value_that_is_not_a_list_fails_the_task(tmp_path: Path) -> None:
    with DAG("not_a_list") as d:
        @task
        def scalar() -> int:
            return 5

        @task
        def each(x: int) -> int:
            return x

        each.expand(x=scalar())
    ran = run(d, tmp_path)
    assert ran.states == {"scalar": "success", "each": "failed"}
    assert ran.state == "failed"


def test_operator_partial_argument_from_an_upstream_xcom(tmp_path: Path) -> None:
    with DAG("op_partial_xcom") as d:
        base = PythonOperator(task_id="base", python_callable=lambda: 100)
        PythonOperator.partial(task_id="plus", python_callable=lambda x, base: x + base,
                               op_kwargs={"base": base.output}).expand(op_args=[[1], [2]])
    ran = run(d, tmp_path)
    assert [ran.xcom("plus", map_index=i) for i in (0, 1)] == [101, 102]
    assert d.get_task("plus").upstream_task_ids == {"base"}


def test_running_a_mapped_task_inside_an_open_dag_block_adds_nothing_to_that_dag(tmp_path: Path) -> None:
    with DAG("mapped_elsewhere") as d:
        @task
        def inc(x: int) -> int:
            return x + 1

        inc.expand(x=[1, 2])
    with DAG("open_block") as other:  # as in a notebook cell that runs one DAG while defining another
        ran = run(d, tmp_path)
    assert ran.state == "success"
    assert other.task_ids == []


def test_partial_argument_the_operator_does_not_take_is_an_error() -> None:
    with DAG("bad_partial"):
        with pytest.raises(DagDefinitionError, match="'b'.*BashOperator.*'nope'"):
            BashOperator.partial(task_id="b", nope=1).expand(bash_command=["true"])


def test_expanding_a_task_over_a_parameter_it_does_not_have_is_an_error() -> None:
    with DAG("bad_task_expand"):
        @task
        def f(x: int) -> int:
            return x

        with pytest.raises(DagDefinitionError, match="'f'.*cannot call f"):
            f.expand(y=[1])
        with pytest.raises(DagDefinitionError, match="cannot call f"):
            f.partial(z=1).expand(x=[1])
