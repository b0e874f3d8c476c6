"""`import`: how long `import nbflow` adds to a fresh interpreter's start-up.

`seconds` is the median wall time of `python -c 'import nbflow'` minus the median of
`python -c pass` (`interpreter_seconds`), each over 7 runs after one warm-up run that
also fills the bytecode cache.
"""
from __future__ import annotations

import platform
import sys

from benchmarks._util import median_seconds, run_python

RUNS = 7


def run() -> dict[str, object]:
    interpreter = median_seconds(lambda: run_python(["-c", "pass"]), RUNS)
    total = median_seconds(lambda: run_python(["-c", "import nbflow"]), RUNS)
    return {
        "seconds": round(total - interpreter, 4),
        "interpreter_seconds": round(interpreter, 4),
        "total_seconds": round(total, 4),
        "runs": RUNS,
        "python": platform.python_version(),
        "executable": sys.executable,
    }
