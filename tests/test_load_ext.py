"""`%load_ext nbflow` in a real IPython shell registers the magics."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from IPython.testing.globalipapp import start_ipython
shell = start_ipython()
shell.extension_manager.load_extension("nbflow")
magics = shell.magics_manager.magics
print(sorted(name for name in magics["cell"] if name in {"dag", "setup", "task", "bash_task"}))
print(sorted(name for name in magics["line"] if name in {"dag", "nbflow", "xcom", "notebook_task"}))
"""


def test_load_ext_registers_the_cell_and_line_magics() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["['bash_task', 'dag', 'setup', 'task']",
                                                  "['dag', 'nbflow', 'notebook_task', 'xcom']"]
