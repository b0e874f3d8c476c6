"""`%load_ext nbflow` in a real IPython shell, before the magics exist."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from IPython.testing.globalipapp import start_ipython
shell = start_ipython()
try:
    shell.extension_manager.load_extension("nbflow")
except Exception as err:
    print(type(err).__name__, err)
"""


def test_load_ext_says_in_one_line_that_the_magics_are_not_there_yet() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        "NbflowException nbflow 0.1.0 has no notebook magics yet; define DAGs in .py files under "
        "core.dags_folder and run them with `nbflow dags test` or `nbflow scheduler`"]
