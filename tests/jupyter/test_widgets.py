"""DagWidget against a real metadata database: runs started anywhere, logs, buttons, the refresher."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from nbflow.graph import STATE_COLORS
from tests.conftest import NbflowEnv, write_dag
from tests.jupyter.conftest import node_fill

PEEK_DAG = """
from datetime import datetime
from nbflow import DAG
from nbflow.operators.python import PythonOperator
from nbflow.operators.bash import BashOperator

def peek():
    from nbflow.secrets import Connection
    print("password is", Connection.get_connection_from_secrets("warehouse").password)
    return 1

def boom():
    raise ValueError("no such table")

with DAG("peek", schedule=None, start_date=datetime(2025, 1, 1)) as dag:
    look = PythonOperator(task_id="look", python_callable=peek)
    fail = PythonOperator(task_id="fail", python_callable=boom)
    after = BashOperator(task_id="after", bash_command="echo never")
    look >> fail >> after
"""


def cli(*args: str, env: NbflowEnv) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow.cli.main", *args], capture_output=True, text=True,
                          cwd=env.dags.parent, timeout=180, check=False)


@pytest.fixture
def finished_run(nbflow_env: NbflowEnv, monkeypatch: pytest.MonkeyPatch) -> NbflowEnv:
    """`peek` triggered and run to its end by `nbflow scheduler` in another process."""
    monkeypatch.setenv("NBFLOW_CONN_WAREHOUSE", "postgresql://etl:s3cret-pw@db/wh")
    write_dag(nbflow_env.dags, "peek.py", PEEK_DAG)
    assert cli("db", "init", env=nbflow_env).returncode == 0
    assert cli("dags", "unpause", "peek", env=nbflow_env).returncode == 0
    assert cli("dags", "trigger", "peek", env=nbflow_env).returncode == 0
    done = cli("scheduler", "--until-idle", "--executor", "local", env=nbflow_env)
    assert done.returncode == 0, done.stderr
    return nbflow_env


def widget_for(dag_id: str, **kwargs):  # noqa: ANN201 - test helper
    from nbflow.configuration import load_config
    from nbflow.jupyter.widgets import DagWidget
    from nbflow.runtime.api import Environment
    return DagWidget(dag_id, env=Environment.from_config(load_config()), **kwargs)


def test_widget_shows_a_run_that_another_process_ran(finished_run: NbflowEnv) -> None:
    widget = widget_for("peek", refresh=False)
    assert widget.states == {"look": "success", "fail": "failed", "after": "upstream_failed"}
    assert [row["task_id"] for row in widget.tasks] == ["after", "fail", "look"]
    assert widget.runs[0]["state"] == "failed"


def test_static_copy_colours_each_node_by_its_state(finished_run: NbflowEnv) -> None:
    page = widget_for("peek", refresh=False).static_html()
    assert node_fill(page, "look") == STATE_COLORS["success"]
    assert node_fill(page, "fail") == STATE_COLORS["failed"]
    assert "<td>upstream_failed</td>" in page


def test_log_panel_tails_the_selected_task_with_secrets_masked(finished_run: NbflowEnv) -> None:
    widget = widget_for("peek", refresh=False)
    widget.selected_task = "look"
    widget.refresh()
    assert "password is ***" in widget.log
    assert "s3cret-pw" not in widget.log
    widget.selected_task = "fail"
    widget.refresh()
    assert "ValueError: no such table" in widget.log


def test_a_task_selected_in_the_browser_reaches_the_kernel(finished_run: NbflowEnv) -> None:
    widget = widget_for("peek", refresh=False)
    widget._handle_msg({"content": {"data": {"method": "update", "state": {"selected_task": "fail"},
                                             "buffer_paths": []}}, "buffers": []})
    widget.refresh()
    assert widget.selected_task == "fail" and "no such table" in widget.log


def test_clear_failed_button_resets_the_failed_tasks_of_the_run_shown(finished_run: NbflowEnv) -> None:
    widget = widget_for("peek", refresh=False)
    widget._on_action(widget, {"action": "clear_failed"}, [])
    assert widget.message.startswith("cleared 2 task(s)")
    assert widget.states["fail"] is None and widget.states["after"] is None
    assert widget.states["look"] == "success"


def test_pause_and_trigger_buttons_act_on_the_database(finished_run: NbflowEnv) -> None:
    widget = widget_for("peek", refresh=False)
    widget._on_action(widget, {"action": "pause"}, [])
    assert widget.paused is True
    widget._on_action(widget, {"action": "unpause"}, [])
    assert widget.paused is False
    widget._on_action(widget, {"action": "trigger"}, [])
    assert widget.message.startswith("queued run") and len(widget.runs) == 2


def test_an_unknown_dag_is_one_line_in_the_widget(nbflow_env: NbflowEnv) -> None:
    assert cli("db", "init", env=nbflow_env).returncode == 0
    widget = widget_for("nope", refresh=False)
    assert widget.message.startswith("DAG 'nope' not found") and "\n" not in widget.message


def test_refresher_follows_a_new_run_and_stops_when_the_widget_closes(finished_run: NbflowEnv) -> None:
    from nbflow.jupyter.refresher import refresher
    widget = widget_for("peek")
    first = widget.run_id
    assert cli("dags", "trigger", "peek", env=finished_run).returncode == 0
    deadline = time.monotonic() + 30
    while widget.run_id == first and time.monotonic() < deadline:
        time.sleep(0.1)
    assert widget.run_id != first and widget.states["look"] is None  # queued, not yet run
    widget.close()
    deadline = time.monotonic() + 10
    while any(t.name == "nbflow-widgets" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert refresher.watching == 0
    assert not any(t.name == "nbflow-widgets" for t in threading.enumerate())


def test_dag_show_displays_a_live_widget_for_a_kernel_dag(ipython, tmp_path: Path) -> None:  # noqa: ANN001
    ipython.ok("%%dag etl\npass")
    ipython.ok("%%task one\n1")
    ipython.ok("%dag show etl")
    widget = ipython.magics.widgets[-1]
    assert widget.dag_id == "etl" and widget.node_ids == {"n_one": "one"}
    assert 'id="n_one"' in widget.svg
    widget.close()


def test_dag_test_shows_a_widget_that_follows_the_test_run_without_a_database(ipython, nbflow_env) -> None:  # noqa: ANN001
    ipython.ok("%%dag etl\npass")
    ipython.ok("%%task fine\nprint('all fine')\n1")
    ipython.ok("%%task broken --upstream fine\nraise ValueError('no rows today')")
    result = ipython.run("%dag test etl")
    assert isinstance(result.error, UsageError) and "task broken failed" in str(result.error)
    widget = ipython.magics.widgets[-1]
    assert widget.states == {"fine": "success", "broken": "failed"}
    assert [(row["task_id"], row["state"], row["try_number"]) for row in widget.tasks] == \
        [("fine", "success", 1), ("broken", "failed", 1)]
    assert widget.runs[0]["state"] == "failed" and widget.run_id.startswith("manual__")
    assert "ValueError: no rows today" in widget.log  # the failed task's log, shown without a click
    widget.selected_task = "fine"
    widget.refresh()
    assert "all fine" in widget.log
    assert node_fill(widget.static_html(), "broken") == STATE_COLORS["failed"]
    assert not (nbflow_env.home / "nbflow.db").exists()  # a test run is kept in no database
    assert "kept in no database" in widget.act("trigger")
