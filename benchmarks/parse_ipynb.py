"""`parse_ipynb`: a notebook DAG file of 100 chained `%%task` cells (plus a markdown cell between each two
and a `%%setup`), parsed cold by the DagBag: read with nbformat, magic lines parsed, cells compiled, DAG
built. Goal: 50 ms or less.

Each measurement runs in a fresh interpreter with nbflow imported before the clock starts (nbformat is
not: importing it is part of the cold parse, as it is for the scheduler's first notebook); median of 5.
`warm_seconds` is a second parse of the same file in that process after its mtime changed (nbformat
imported, caches warm).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from benchmarks._util import REPO, python_env, scratch_dir

TASKS, RUNS = 100, 5
CHILD = '''
import json, os, sys, time
from nbflow.runtime.dagbag import DagBag
import nbflow.operators.python  # what a .py DAG file would import too; not part of the notebook's parse
start = time.perf_counter()
cpu = time.process_time()
bag = DagBag(sys.argv[1], import_timeout=30)
cold = time.perf_counter() - start
cpu = time.process_time() - cpu
assert not bag.import_errors and len(bag.dags["parse_ipynb"].task_dict) == {tasks}, bag.import_errors
path = os.path.join(sys.argv[1], "parse_ipynb.ipynb")
stamp = os.stat(path).st_mtime_ns + 1_000_000_000
os.utime(path, ns=(stamp, stamp))
start = time.perf_counter()
bag.refresh()
warm = time.perf_counter() - start
print(json.dumps({{"cold": cold, "cpu": cpu, "warm": warm}}))
'''


def write(folder) -> None:
    cells = [new_markdown_cell("# 100 chained cell tasks"), new_code_cell("%load_ext nbflow"),
             new_code_cell("%%dag parse_ipynb --schedule @daily --tags bench\npass"),
             new_code_cell("%%setup\nimport math\nimport statistics")]
    for i in range(TASKS):
        upstream = f" --upstream t{i - 1}" if i else ""
        body = f"value = {i} if {i} == 0 else t{i - 1} + 1\nprint('step', value)\nvalue" if i else "0"
        cells += [new_markdown_cell(f"Step {i}."), new_code_cell(f"%%task t{i}{upstream} --retries 1\n{body}")]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "parse_ipynb.ipynb"
    nbformat.write(notebook, str(path))
    an_hour_ago = time.time() - 3600  # an existing file, not one the DagBag would re-read as just written
    os.utime(path, (an_hour_ago, an_hour_ago))


def _measure(folder) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD.format(tasks=TASKS), str(folder)], cwd=REPO,
                          env=python_env(), check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def run() -> dict[str, object]:
    folder = scratch_dir("parse_ipynb")
    write(folder)
    _measure(folder)  # bytecode of nbflow and nbformat on disk, as any earlier run leaves it
    results = [_measure(folder) for _ in range(RUNS)]
    return {
        "seconds": round(statistics.median(r["cold"] for r in results), 4),
        "cold_runs": [round(r["cold"], 4) for r in results],
        "cold_cpu_seconds": round(statistics.median(r["cpu"] for r in results), 4),
        "warm_seconds": round(statistics.median(r["warm"] for r in results), 4),
        "goal_seconds": 0.05,
        "tasks": TASKS,
        "file_bytes": (folder / "parse_ipynb.ipynb").stat().st_size,
    }
