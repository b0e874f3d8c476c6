"""Notebooks in the dags folder are DAG files: read statically with nbformat (no kernel), magic cells only."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nbflow.operators.bash import BashOperator
from nbflow.operators.cell import CellTaskOperator
from nbflow.operators.notebook import NotebookOperator
from nbflow.runtime.dagbag import DagBag
from tests.conftest import NbflowEnv, write_dag
from tests.ipynb import write_cells

PIPELINE = (
    "md:# Orders\nThe cells below make the `orders` DAG.",
    "import pandas_is_not_needed_here  # an ordinary cell: never run by the DagBag",
    "%%dag orders --schedule @daily --retries 2 --tags nb,example",
    "%%setup\nimport math",
    "%%task extract\n[1, 2, 3]",
    "md:Totals come next.",
    "%%task total --upstream extract --retries 0\nmath.fsum(extract)",
    "%%bash_task announce --upstream total\necho done",
    "%notebook_task publish --notebook step.ipynb -p value 3 -p step true --upstream extract",
    "%%time\nprint('a cell magic nbflow does not own: ignored')",
)


def bag_of(folder: Path) -> DagBag:
    return DagBag(str(folder), import_timeout=30)


def test_a_notebook_dag_has_its_tasks_edges_and_setup_and_ignores_other_cells(nbflow_env: NbflowEnv) -> None:
    write_cells(nbflow_env.dags / "step.ipynb", "%%capture\nvalue = 0")  # a plain notebook: no DAG, no error
    path = write_cells(nbflow_env.dags / "orders.ipynb", *PIPELINE)
    bag = bag_of(nbflow_env.dags)
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["orders"]
    dag = bag.dags["orders"]
    assert dag.fileloc == str(path) and dag.timetable.summary == "@daily" and sorted(dag.tags) == ["example", "nb"]
    assert sorted(dag.task_dict) == ["announce", "extract", "publish", "total"]
    extract, total = dag.task_dict["extract"], dag.task_dict["total"]
    assert isinstance(extract, CellTaskOperator) and extract.source == "[1, 2, 3]" and extract.cell == 5
    assert total.setup == ("import math",) and total.retries == 0 and extract.retries == 2
    assert total.upstream_task_ids == {"extract"}
    announce = dag.task_dict["announce"]
    assert isinstance(announce, BashOperator) and announce.bash_command == "echo done"
    assert announce.upstream_task_ids == {"total"}
    publish = dag.task_dict["publish"]
    assert isinstance(publish, NotebookOperator) and publish.upstream_task_ids == {"extract"}
    assert publish.input_nb == str(nbflow_env.dags / "step.ipynb")  # relative to the notebook's folder
    assert publish.parameters == {"value": 3, "step": True}


def test_a_notebook_that_is_not_json_is_an_import_error_naming_it(nbflow_env: NbflowEnv) -> None:
    broken = nbflow_env.dags / "broken.ipynb"
    broken.write_text('{"cells": [{"cell_type": "code", "source": "%%dag x"')  # cut off mid-save
    write_cells(nbflow_env.dags / "orders.ipynb", *PIPELINE)
    bag = bag_of(nbflow_env.dags)
    assert list(bag.import_errors) == [str(broken)]
    assert bag.import_errors[str(broken)].startswith(f"{broken}: not a readable notebook")
    assert "orders" in bag.dags


def test_a_malformed_magic_line_names_the_notebook_and_cell_and_the_other_dag_still_loads(
        nbflow_env: NbflowEnv) -> None:
    path = write_cells(nbflow_env.dags / "two.ipynb",
                       "%%dag good", "%%task a\n1",
                       "md:the second DAG", "%%dag bad", "%%task b --retries many\n2")
    bag = bag_of(nbflow_env.dags)
    assert sorted(bag.dags) == ["good"]
    error = bag.import_errors[str(path)]
    assert error.startswith(f"{path}: cell 5 (%%task b --retries many)")
    assert "argument --retries: invalid int value: 'many'" in error


def test_an_unknown_upstream_is_an_import_error_naming_the_cell(nbflow_env: NbflowEnv) -> None:
    path = write_cells(nbflow_env.dags / "typo.ipynb", "%%dag typo", "%%task a\n1", "%%task b --upstream aa\n2")
    bag = bag_of(nbflow_env.dags)
    assert bag.dags == {}
    assert bag.import_errors[str(path)] == (f"{path}: cell 3 (%%task b --upstream aa): upstream 'aa' is not a task "
                                            f"of DAG 'typo'; known: a, b")


def test_a_syntax_error_in_a_task_cell_names_the_cell_and_line(nbflow_env: NbflowEnv) -> None:
    path = write_cells(nbflow_env.dags / "syntax.ipynb", "%%dag syntax", "%%task a\nx = 1\ny = (\n")
    error = bag_of(nbflow_env.dags).import_errors[str(path)]
    assert "cell 2 (%%task a)" in error and "line 2" in error and "SyntaxError" in error


def test_cells_go_to_the_dag_named_by_dash_dash_dag_else_to_the_last_dag_above(nbflow_env: NbflowEnv) -> None:
    write_cells(nbflow_env.dags / "mixed.ipynb",
                "%%dag one", "%%dag two",
                "%%task a --dag one\n1",
                "%%task b\n2",
                "%%task c --dag one --upstream a\n3",
                "%%setup --dag two\nimport json")
    bag = bag_of(nbflow_env.dags)
    assert bag.import_errors == {}
    one, two = bag.dags["one"], bag.dags["two"]
    assert sorted(one.task_dict) == ["a", "c"] and one.task_dict["c"].upstream_task_ids == {"a"}
    assert sorted(two.task_dict) == ["b"] and two.task_dict["b"].setup == ("import json",)
    assert one.task_dict["a"].setup == ()


def test_a_notebook_dag_and_a_python_dag_load_side_by_side(nbflow_env: NbflowEnv) -> None:
    write_cells(nbflow_env.dags / "orders.ipynb", *PIPELINE)
    write_dag(nbflow_env.dags, "classic.py", """
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("classic", schedule=None):
            EmptyOperator(task_id="only")
    """)
    bag = bag_of(nbflow_env.dags)
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["classic", "orders"]
    assert bag.dags["orders"].source.kind == "notebook" and bag.dags["classic"].source.kind == "python"


def _cli(env: NbflowEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow.cli.main", *args], capture_output=True, text=True,
                          env=dict(os.environ), cwd=env.dags.parent, timeout=120, check=False)


def test_dags_list_shows_a_notebook_dag_and_import_errors_show_the_broken_cell(nbflow_env: NbflowEnv) -> None:
    write_cells(nbflow_env.dags / "orders.ipynb", *PIPELINE)
    write_cells(nbflow_env.dags / "broken.ipynb", "%%dag broken", "md:notes", "%%task a --upstream\n1",
                "%%task b --pool\n2")
    listed = _cli(nbflow_env, "dags", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [(row["dag_id"], row["file"], row["schedule"]) for row in json.loads(listed.stdout)] == \
        [("orders", "orders.ipynb", "@daily")]
    errors = _cli(nbflow_env, "dags", "list-import-errors")
    assert errors.returncode == 0, errors.stderr
    assert "broken.ipynb" in errors.stdout and "cell 4 (%%task b --pool)" in errors.stdout


def test_an_older_notebook_format_is_read_through_nbformat(nbflow_env: NbflowEnv) -> None:
    import nbformat
    path = write_cells(nbflow_env.dags / "old.ipynb", "%%dag old", "%%task a\n1", "%%task b --upstream a\na")
    nbformat.write(nbformat.convert(nbformat.read(str(path), as_version=4), 3), str(path))  # as Jupyter 2 saved it
    bag = bag_of(nbflow_env.dags)
    assert bag.import_errors == {}
    assert bag.dags["old"].task_dict["b"].upstream_task_ids == {"a"}
