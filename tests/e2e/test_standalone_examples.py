"""`make run`'s job: `nbflow standalone` runs every example DAG of the repository on its schedule.

The repository's dags/, notebooks/, extensions/ and nbflow.toml are copied to a scratch folder and
the command runs there, configured by that nbflow.toml alone (as `make run` is, minus the
Makefile's NBFLOW_HOME), so a setting the examples need but the repository's file lacks shows here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from nbflow.configuration import load_config
from nbflow.runtime import api

REPO = Path(__file__).resolve().parents[2]


def test_standalone_runs_each_example_dag_once_on_its_schedule(tmp_path: Path, monkeypatch) -> None:
    for folder in ("dags", "notebooks", "extensions"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, tmp_path / folder)
    shutil.copy(REPO / "nbflow.toml", tmp_path / "nbflow.toml")
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("NBFLOW")]:
        monkeypatch.delenv(name)
    result = subprocess.run([sys.executable, "-m", "nbflow.cli.main", "standalone", "--until-idle"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"task logs under {tmp_path / '.nbflow' / 'logs'}" in result.stderr
    environment = api.Environment.from_config(load_config())
    scheduled = [dag_id for dag_id, dag in environment.dagbag.dags.items() if dag.timetable.periodic]
    assert len(scheduled) >= 3
    for dag_id in scheduled:
        runs = api.list_runs(environment, dag_id)
        assert [r.run_type for r in runs] == ["scheduled"], dag_id
        assert runs[0].state == "success", (dag_id, runs[0].failed_task)
        assert f"DAG run {dag_id} {runs[0].run_id}: success" in result.stderr
