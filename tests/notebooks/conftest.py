"""Fixtures for notebook tasks: real notebooks written under tmp_path, run in real Jupyter kernels."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.conftest import NbflowEnv


@pytest.fixture(scope="session", autouse=True)
def python3_kernel() -> None:
    """The `python3` kernelspec must resolve; ipykernel installs it into the venv, else install it there."""
    from nbflow.operators.notebook_kernels import find_kernel_spec
    if find_kernel_spec("python3") is None:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", sys.prefix], check=True,
                       stdout=subprocess.DEVNULL)
    if find_kernel_spec("python3") is None:
        pytest.fail("no python3 Jupyter kernel; run `python -m ipykernel install --prefix .venv`")


@pytest.fixture
def nb_env(nbflow_env: NbflowEnv, monkeypatch: pytest.MonkeyPatch) -> NbflowEnv:
    """nbflow_env plus settings that keep notebook tests quick."""
    monkeypatch.setenv("NBFLOW__CORE__NOTEBOOKS_FOLDER", str(nbflow_env.dags.parent / "notebooks"))
    return nbflow_env


def write_notebook(path: Path, *cells: str, parameters: str | None = None, kernel: str = "python3",
                   markdown: str | None = None) -> Path:
    """A notebook at `path`: an optional cell tagged `parameters`, then one code cell per source."""
    items: list[Any] = [new_markdown_cell(markdown)] if markdown else []
    if parameters is not None:
        items.append(new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    items += [new_code_cell(source) for source in cells]
    nb = new_notebook(cells=items)
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def read_notebook(path: Path) -> Any:
    return nbformat.read(str(path), as_version=4)


def outputs_text(nb: Any) -> str:
    """Every stream text and text/plain result of the notebook, concatenated."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or (output.get("data") or {}).get("text/plain", "")
                         or f"{output.get('ename', '')}: {output.get('evalue', '')}")
    return "\n".join(parts)


def kernels_of(home: Path) -> set[int]:
    """Running ipykernel processes whose environment has this NBFLOW_HOME (started for this test)."""
    mark = f"NBFLOW_HOME={home}".encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ipykernel_launcher" in (entry / "cmdline").read_bytes() and \
                    mark in (entry / "environ").read_bytes().split(b"\0"):
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids
