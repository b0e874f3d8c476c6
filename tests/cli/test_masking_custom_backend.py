"""A custom secrets backend's values are secrets whatever their name: masked under a real scheduler and in the CLI.

The backend is the example plugin (extensions/example_secrets_backend.py), copied into the project's plugins
folder and named in the project's nbflow.toml, as a user would set it up. Its variable `region` has no
sensitive name; env and the metastore would show it, a secrets store's value is masked everywhere.
`nbflow variables get` prints it as *** as it does a sensitive variable, and prints it with --show-secrets.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_masking_everywhere import running_scheduler, run_to_end
from tests.conftest import write_dag

EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"
REGION = "eu-region-417-x"

REGIONAL_DAG = '''
from nbflow import DAG
from nbflow.models import Variable
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator

def print_region():
    print("deploying to", Variable.get("region"))

def fail_with_region():
    raise ValueError("no capacity in " + Variable.get("region"))

with DAG("regional", schedule=None):
    PythonOperator(task_id="print_region", python_callable=print_region)
    BashOperator(task_id="echo_region", bash_command='echo "templated {{ var.value.region }}"',
                 do_xcom_push=False)  # an XCom rests as returned unless core.encrypt_xcom (see test_masking_everywhere)
    PythonOperator(task_id="fail_with_region", python_callable=fail_with_region)
'''


@pytest.fixture
def project(nbflow_env, monkeypatch):
    """nbflow.toml naming the example backend by class path; its JSON file holds `region`."""
    root = nbflow_env.dags.parent
    plugins = root / "plugins"
    plugins.mkdir()
    shutil.copy(EXTENSIONS / "example_secrets_backend.py", plugins / "example_secrets_backend.py")
    (root / "secrets.json").write_text(json.dumps({"variables": {"region": REGION}}))
    (root / "nbflow.toml").write_text(
        '[core]\nplugins_folder = "plugins"\ndags_are_paused_at_creation = false\n\n'
        '[scheduler]\nheartbeat_sec = 0.2\n\n'
        '[secrets]\nbackends = "env,example_secrets_backend:JsonFileSecretsBackend,metastore"\n\n'
        '[json_secrets]\npath = "secrets.json"\n')
    write_dag(nbflow_env.dags, "regional.py", REGIONAL_DAG)
    return nbflow_env


def files_holding(home: Path, text: str) -> list[str]:
    return [str(path.relative_to(home)) for path in home.rglob("*") if path.is_file() and text.encode() in
            path.read_bytes()]


def test_a_custom_backend_variable_is_masked_in_attempt_logs_under_the_scheduler(project) -> None:
    with running_scheduler(project) as (environment, stderr):
        assert run_to_end(environment, "regional")[1] == "failed"  # fail_with_region fails, the others succeed
    logs = project.home / "logs"
    assert "deploying to ***" in next(logs.rglob("task_id=print_region/attempt=1.log")).read_text()
    assert "templated ***" in next(logs.rglob("task_id=echo_region/attempt=1.log")).read_text()
    assert "no capacity in ***" in next(logs.rglob("task_id=fail_with_region/attempt=1.log")).read_text()
    assert files_holding(project.home, REGION) == []
    assert REGION not in stderr.read_text()


def test_variables_get_prints_a_custom_backend_value_as_stars_unless_asked_to_show_it(project) -> None:
    nbflow = Cli(project)
    assert nbflow("db", "init").code == 0
    hidden = nbflow("variables", "get", "region")
    assert (hidden.code, hidden.out) == (0, "***\n")
    shown = nbflow("variables", "get", "region", "--show-secrets")
    assert (shown.code, shown.out) == (0, f"{REGION}\n")


def test_a_custom_backend_value_is_masked_in_the_cli_final_error_line(project) -> None:
    nbflow = Cli(project)
    assert nbflow("db", "init").code == 0
    done = nbflow("tasks", "test", "regional", "fail_with_region")
    assert done.code == 1
    assert "no capacity in ***" in done.error_line
    assert REGION not in done.out + done.err
