"""A notebook task that prints and raises a secret: its executed notebook and log under $NBFLOW_HOME hold ***."""
from __future__ import annotations

from pathlib import Path

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.notebooks.conftest import outputs_text, read_notebook, write_notebook
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle

API_KEY = "apikey-notebook-3c4d5e6f"

DAG = """
from nbflow import DAG
from nbflow.operators.notebook import NotebookOperator

with DAG("nb_leaky", schedule=None):
    NotebookOperator(task_id="prints", input_nb="prints.ipynb")
    NotebookOperator(task_id="raises", input_nb="raises.ipynb")
"""


def test_secrets_in_notebook_outputs_are_masked_in_the_executed_notebook(nb_env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW_VAR_API_KEY", API_KEY)
    write_notebook(nb_env.dags / "prints.ipynb", "import os\nprint('key', os.environ['NBFLOW_VAR_API_KEY'])",
                   "os.environ['NBFLOW_VAR_API_KEY']")
    write_notebook(nb_env.dags / "raises.ipynb",
                   "import os\nraise PermissionError('refused ' + os.environ['NBFLOW_VAR_API_KEY'])")
    write_dag(nb_env.dags, "nb_leaky.py", DAG)
    environment = make_env()
    run = api.trigger_dag(environment, "nb_leaky")
    run_scheduler_until_idle(environment)
    states = {row.task_id: row.state for row in api.task_states(environment, "nb_leaky", run.run_id)}
    assert states == {"prints": "success", "raises": "failed"}
    executed = sorted((nb_env.home / "notebooks").rglob("*.ipynb"))
    assert len(executed) == 2
    texts = {path.parent.name: outputs_text(read_notebook(path)) for path in executed}
    assert "key ***" in texts["task_id=prints"] and "'***'" in texts["task_id=prints"]
    assert "refused ***" in texts["task_id=raises"]
    leaking = [str(path) for path in Path(nb_env.home).rglob("*") if path.is_file()
               and API_KEY.encode() in path.read_bytes()]
    assert leaking == []
