"""A real IPython InteractiveShell with the nbflow magics, configured only by the test."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import NbflowEnv


@dataclass
class CellResult:
    value: Any
    error: BaseException | None
    out: str


class Shell:
    """Runs cells in the shell, as a notebook would, and says what each printed."""

    def __init__(self, shell: Any, capsys: pytest.CaptureFixture[str], magics: Any) -> None:
        self.shell, self.capsys, self.magics = shell, capsys, magics

    def run(self, text: str) -> CellResult:
        self.capsys.readouterr()
        result = self.shell.run_cell(text, store_history=False)
        out = self.capsys.readouterr()
        return CellResult(result.result, result.error_in_exec or result.error_before_exec, out.out + out.err)

    def ok(self, text: str) -> CellResult:
        result = self.run(text)
        assert result.error is None, f"{type(result.error).__name__}: {result.error}\n{result.out}"
        return result


@pytest.fixture
def ipython(nbflow_env: NbflowEnv, capsys: pytest.CaptureFixture[str]) -> Iterator[Shell]:
    """The nbflow magics, fresh for this test, in the process-wide test InteractiveShell."""
    from IPython.testing.globalipapp import get_ipython

    from nbflow.jupyter.magics import NbflowMagics

    shell = get_ipython()
    magics = NbflowMagics(shell)
    shell.register_magics(magics)
    yield Shell(shell, capsys, magics)
    for widget in magics.widgets:  # as the kernel's end would: no widget outlives its test
        widget.close()
    if magics._scheduler is not None:
        magics._scheduler.stop()


def node_fill(svg: str, task_id: str) -> str:
    """The fill colour of a task's node in a static SVG, found by its node id."""
    block = svg[svg.index(f'id="n_{task_id}"'):]
    found = re.search(r'fill="(#[0-9a-f]{6})"', block)
    assert found is not None, f"no fill colour on the node of {task_id}"
    return found.group(1)
