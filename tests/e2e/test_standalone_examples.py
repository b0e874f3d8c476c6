"""`make run`'s job: `nbflow standalone` runs every example DAG of the repository on its schedule."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from nbflow.configuration import load_config
from nbflow.runtime import api

REPO = Path(__file__).resolve().parents[2]


def test_standalone_runs_each_example_dag_once_on_its_schedule(nbflow_env, monkeypatch) -> None:
    shutil.copytree(REPO / "dags", nbflow_env.dags, dirs_exist_ok=True)
    if (REPO / "notebooks").is_dir():
        shutil.copytree(REPO / "notebooks", nbflow_env.dags.parent / "notebooks", dirs_exist_ok=True)
        monkeypatch.setenv("NBFLOW__CORE__NOTEBOOKS_FOLDER", str(nbflow_env.dags.parent / "notebooks"))
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    result = subprocess.run([sys.executable, "-m", "nbflow.cli.main", "standalone", "--until-idle"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    environment = api.Environment.from_config(load_config())
    scheduled = [dag_id for dag_id, dag in environment.dagbag.dags.items() if dag.timetable.periodic]
    assert len(scheduled) >= 3
    for dag_id in scheduled:
        runs = api.list_runs(environment, dag_id)
        assert [r.run_type for r in runs] == ["scheduled"], dag_id
        assert runs[0].state == "success", (dag_id, runs[0].failed_task)
