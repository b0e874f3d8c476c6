"""Every example DAG in the repository's `dags/` folder (Python files and notebooks) loads and passes
`nbflow dags test`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(path.name for pattern in ("*.py", "*.ipynb") for path in REPO_DAGS.glob(pattern))


def nbflow(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NBFLOW_")}
    env.update({"NBFLOW_HOME": str(home), "NBFLOW__CORE__DAGS_FOLDER": str(REPO_DAGS)})
    return subprocess.run([sys.executable, "-m", "nbflow.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=home.parent, timeout=120, check=False)


def test_the_examples_folder_has_at_least_three_dags_and_no_import_errors(tmp_path: Path) -> None:
    listed = nbflow(tmp_path / "home", "dags", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) >= 3
    errors = nbflow(tmp_path / "home", "dags", "list-import-errors", "--output", "json")
    assert json.loads(errors.stdout) == []


@pytest.mark.parametrize("logical_date", ["2025-01-04", "2025-01-06"])  # a Saturday and a Monday: other branches
@pytest.mark.parametrize("file_name", DAG_FILES)
def test_every_dag_of_the_file_passes_dags_test(file_name: str, logical_date: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    listed = nbflow(home, "dags", "list", "--output", "json")
    dag_ids = [entry["dag_id"] for entry in json.loads(listed.stdout) if entry["file"] == file_name]
    assert dag_ids, f"{file_name} defines no DAG"
    for dag_id in dag_ids:
        done = nbflow(home, "dags", "test", dag_id, logical_date)
        assert done.returncode == 0, f"{dag_id}:\n{done.stdout}\n{done.stderr}"
        assert ": success in " in done.stderr
