"""graph.py: a DAG as DOT text (clusters, labels, state colours) and as a picture drawn by `dot`."""
from __future__ import annotations

import shutil
from datetime import datetime

import pytest

from nbflow.exceptions import GraphRenderError
from nbflow.graph import STATE_COLORS, dag_to_dot, node_id, render
from nbflow.operators.empty import EmptyOperator
from nbflow.sdk import DAG, Label, TaskGroup
from tests.services import require_service


def make_dag() -> DAG:
    with DAG("shapes", start_date=datetime(2025, 1, 1)) as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("outer"):
            with TaskGroup("inner"):
                deep = EmptyOperator(task_id="deep")
        end = EmptyOperator(task_id="end")
        start >> Label("when ready") >> deep >> end
    return dag


def test_node_ids_are_plain_for_plain_ids_and_never_collide() -> None:
    assert node_id("extract_data") == "n_extract_data"
    ids = {node_id(t) for t in ("a.b", "a_b", "a-b", "a__b")}
    assert len(ids) == 4
    assert all(i.replace("_", "").isalnum() for i in ids)
    assert node_id("a.b") == node_id("a.b")  # stable


def test_dot_has_left_to_right_rank_nodes_clusters_and_edge_labels() -> None:
    dot = dag_to_dot(make_dag())
    assert dot.startswith('digraph "shapes" {') and dot.rstrip().endswith("}")
    assert 'rankdir="LR"' in dot
    deep = node_id("outer.inner.deep")
    assert f'{deep} [label="deep"' in dot
    outer_at, inner_at, deep_at = dot.index("cluster_outer"), dot.index("cluster_outer_inner"), dot.index(deep)
    assert outer_at < inner_at < deep_at
    assert f'n_start -> {deep} [label="when ready"];' in dot
    assert f"{deep} -> n_end;" in dot


def test_states_colour_nodes_and_missing_states_are_white() -> None:
    dot = dag_to_dot(make_dag(), states={"start": "success", "end": "failed"})
    assert f'n_start [label="start", id="n_start", fillcolor="{STATE_COLORS["success"]}"' in dot
    assert f'fillcolor="{STATE_COLORS["failed"]}", tooltip="end (EmptyOperator): failed"' in dot
    assert 'fillcolor="#ffffff", tooltip="outer.inner.deep (EmptyOperator): no status"' in dot


def test_quotes_in_labels_are_escaped() -> None:
    with DAG("quoted", start_date=datetime(2025, 1, 1)) as dag:
        EmptyOperator(task_id="a") >> Label('say "hi"') >> EmptyOperator(task_id="b")
    assert '[label="say \\"hi\\""]' in dag_to_dot(dag)


def test_render_svg_with_dot() -> None:
    if shutil.which("dot") is None:
        require_service("graphviz", "`dot` is not installed; run `make sysdeps`")
    svg = render(dag_to_dot(make_dag()), "svg")
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert b'id="n_start"' in svg


def test_render_names_missing_dot_and_unknown_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GraphRenderError, match="use one of: svg, png, pdf"):
        render("digraph {}", "gif")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GraphRenderError, match="graphviz's `dot` is not installed; run `make venv sysdeps`"):
        render("digraph {}", "svg")
