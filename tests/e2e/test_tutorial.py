"""`notebooks/tutorial.ipynb` executes top to bottom in a real kernel, as a newcomer runs it after `make run`.

The repository's nbflow.toml and notebooks/ are copied to a scratch folder and the kernel starts in its
notebooks/ (as Jupyter does), so the tutorial is configured by that nbflow.toml alone: a fresh home, DAGs
unpaused. The dags folder is left empty here, so the in-kernel scheduler runs only the tutorial's DAG.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.ipynb import cell_text

REPO = Path(__file__).resolve().parents[2]


def test_the_tutorial_runs_top_to_bottom_without_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks")
    shutil.copy(REPO / "nbflow.toml", tmp_path / "nbflow.toml")
    (tmp_path / "dags").mkdir()
    for name in [name for name in os.environ if name.startswith("NBFLOW")]:
        monkeypatch.delenv(name)  # the kernel inherits this environment: nbflow.toml alone configures it
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")  # only quicker polls in this test
    notebook = nbformat.read(str(tmp_path / "notebooks" / "tutorial.ipynb"), as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(tmp_path / "notebooks")}})
    try:
        client.execute()  # raises CellExecutionError at the first cell that fails
    finally:
        nbformat.write(notebook, str(tmp_path / "executed.ipynb"))
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = {cell.source.splitlines()[0]: cell_text(cell) for cell in code}
    assert not [cell for cell in code for o in cell.get("outputs", []) if o["output_type"] == "error"]
    assert "12 orders on " in outputs["%%task orders --run"]
    assert outputs["%dag test tutorial_orders"].rstrip().splitlines()[-1].endswith(" s")
    assert ": success in " in outputs["%dag test tutorial_orders"]
    assert outputs["%dag run tutorial_orders"].startswith("queued run manual__")
    states = outputs["import time"].split()[1::2]
    assert states and set(states) == {"success"}, outputs["import time"]
    assert "'best':" in outputs["%xcom tutorial_orders summary"]
    assert "'count': 12" in outputs["%xcom tutorial_orders extract_csv"]
    assert "/example_data/20" in outputs["%xcom tutorial_orders extract_csv"]  # `{{ ds }}` rendered to a day
    assert outputs["%dag export tutorial_orders {export_to}"].startswith("wrote ")
    assert "CellTaskOperator(task_id='summary'" in outputs["print(export_to.read_text())"]
    assert outputs["%nbflow scheduler stop"] == "scheduler stopped\n"
    assert (tmp_path / ".nbflow" / "nbflow.db").is_file()  # the home nbflow.toml names, as `make run` uses
