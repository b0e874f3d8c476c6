"""Writing notebook DAG files for tests: real .ipynb files made with nbformat, as Jupyter saves them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

MARKDOWN = "md:"  # a cell given as "md:text" is a markdown cell; every other cell is a code cell


def write_cells(path: Path, *cells: str) -> Path:
    """A notebook at `path` with one cell per string (code, or markdown when it starts with `md:`)."""
    items = [new_markdown_cell(cell[len(MARKDOWN):]) if cell.startswith(MARKDOWN) else new_code_cell(cell)
             for cell in cells]
    notebook = new_notebook(cells=items)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    return path


def cell_text(cell: Any) -> str:
    """What an executed cell showed, as text: its streams, errors (`Name: value`) and plain-text results."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
        else:
            parts.append((output.get("data") or {}).get("text/plain", ""))
    return "".join(parts)
