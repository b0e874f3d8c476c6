"""TaskGroup: prefixed ids, nesting, group-level dependencies, defaults, `@task_group`."""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.authoring.dag import DAG
from nbflow.decorators import task, task_group
from nbflow.exceptions import DagDefinitionError, DuplicateTaskIdFound
from nbflow.operators.empty import EmptyOperator
from nbflow.utils.task_group import TaskGroup
from tests.authoring.helpers import run


def test_tasks_in_a_group_get_the_group_id_as_prefix() -> None:
    with DAG("prefix") as d:
        with TaskGroup("extract") as g:
            a = EmptyOperator(task_id="a")
    assert a.task_id == "extract.a" and a.label == "a"
    assert d.has_task("extract.a")
    assert g.children == {"extract.a": a}


def test_prefix_group_id_false_keeps_task_ids_as_given() -> None:
    with DAG("no_prefix") as d:
        with TaskGroup("extract", prefix_group_id=False):
            EmptyOperator(task_id="a")
    assert d.task_ids == ["a"]


def test_nested_groups_prefix_every_level() -> None:
    with DAG("nested") as d:
        with TaskGroup("outer"):
            with TaskGroup("inner") as inner:
                EmptyOperator(task_id="t")
    assert inner.group_id == "outer.inner"
    assert d.task_ids == ["outer.inner.t"]


def test_group_without_a_dag_is_an_error() -> None:
    with pytest.raises(DagDefinitionError, match="'lonely'"):
        TaskGroup("lonely")


def test_group_id_used_twice_is_an_error() -> None:
    with DAG("dup_groups"):
        TaskGroup("g")
        with pytest.raises(DuplicateTaskIdFound, match="'g'"):
            TaskGroup("g")


def test_group_to_task_links_the_groups_leaves() -> None:
    with DAG("g2t"):
        with TaskGroup("g") as g:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            a >> [b, c]
        end = EmptyOperator(task_id="end")
        g >> end
    assert end.upstream_task_ids == {"g.b", "g.c"}
    assert a.downstream_task_ids == {"g.b", "g.c"}


def test_task_to_group_links_the_groups_roots() -> None:
    with DAG("t2g"):
        start = EmptyOperator(task_id="start")
        with TaskGroup("g") as g:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            a >> b
            EmptyOperator(task_id="c")
        start >> g
    assert start.downstream_task_ids == {"g.a", "g.c"}


def test_group_to_group_links_leaves_to_roots() -> None:
    with DAG("g2g"):
        with TaskGroup("one") as one:
            EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
        with TaskGroup("two") as two:
            EmptyOperator(task_id="c") >> EmptyOperator(task_id="d")
        one >> two
    assert one.children["one.b"].downstream_task_ids == {"two.c"}
    assert two.children["two.c"].upstream_task_ids == {"one.b"}
    assert "two" in one.downstream_group_ids


def test_group_default_args_apply_to_its_tasks_over_the_dags() -> None:
    with DAG("group_defaults", default_args={"retries": 1, "owner": "dag"}):
        with TaskGroup("g", default_args={"retries": 5}):
            inside = EmptyOperator(task_id="inside")
            with TaskGroup("inner"):
                deeper = EmptyOperator(task_id="deeper")
        outside = EmptyOperator(task_id="outside")
    assert (inside.retries, inside.owner) == (5, "dag")
    assert deeper.retries == 5
    assert outside.retries == 1


def test_task_group_decorator_returns_the_group() -> None:
    with DAG("decorated_group") as d:
        @task_group
        def section() -> None:
            EmptyOperator(task_id="a")

        g = section()
    assert isinstance(g, TaskGroup) and g.group_id == "section"
    assert d.task_ids == ["section.a"]


def test_task_group_decorator_suffixes_a_repeated_call() -> None:
    with DAG("repeated_group") as d:
        @task_group(group_id="load")
        def load() -> None:
            EmptyOperator(task_id="write")

        first, second, third = load(), load(), load()
    assert [g.group_id for g in (first, second, third)] == ["load", "load__1", "load__2"]
    assert d.task_ids == ["load.write", "load__1.write", "load__2.write"]


def test_task_group_decorator_passes_xcoms_through_and_runs(tmp_path: Path) -> None:
    with DAG("group_flow") as d:
        @task
        def source() -> int:
            return 3

        @task
        def double(x: int) -> int:
            return x * 2

        @task
        def add_one(x: int) -> int:
            return x + 1

        @task_group
        def transform(value: int) -> object:
            return add_one(double(value))

        @task
        def sink(x: int) -> int:
            return x

        sink(transform(source()))
    ran = run(d, tmp_path)
    assert ran.state == "success"
    assert ran.xcom("transform.add_one") == 7
    assert ran.xcom("sink") == 7
    assert d.get_task("transform.double").upstream_task_ids == {"source"}


def test_group_level_dependency_runs_in_order(tmp_path: Path) -> None:
    with DAG("group_order") as d:
        @task
        def first() -> str:
            return "first"

        with TaskGroup("middle") as middle:
            @task
            def pull(ti=None) -> str:  # type: ignore[no-untyped-def]
                return ti.xcom_pull(task_ids="first") + " then middle"
            pull()
        first() >> middle
    ran = run(d, tmp_path)
    assert ran.xcom("middle.pull") == "first then middle"


def test_label_between_a_group_and_a_task_links_and_labels_the_edges() -> None:
    from nbflow.utils.edgemodifier import Label

    with DAG("group_labels") as d:
        with TaskGroup("g") as g:
            EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
        start = EmptyOperator(task_id="start")
        end = EmptyOperator(task_id="end")
        start >> Label("in") >> g
        g >> Label("out") >> end
    assert d.get_task("g.a").upstream_task_ids == {"start"}
    assert end.upstream_task_ids == {"g.b"}
    assert d.get_edge_info("start", "g.a") == {"label": "in"}
    assert d.get_edge_info("g.b", "end") == {"label": "out"}
