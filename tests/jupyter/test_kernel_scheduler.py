"""`%nbflow scheduler start`: the scheduler on a thread of the kernel runs the DAGs its cells define."""
from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from nbflow.graph import STATE_COLORS
from nbflow.runtime import api
from tests.conftest import NbflowEnv
from tests.jupyter.conftest import Shell, node_fill
from tests.runtime.scheduler_helpers import wait_for

CHAIN = ["%%dag chain\npass", "%%task one\n1", "%%task two --upstream one\none + 1"]


@pytest.fixture
def shell(ipython: Shell, nbflow_env: NbflowEnv, monkeypatch: pytest.MonkeyPatch) -> Shell:
    """The shell, with DAGs unpaused when first seen (as the repository's nbflow.toml has it)."""
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return ipython


def ended(shell: Shell, dag_id: str, run_id: str) -> str:
    """The run's state once it has ended (bounded poll)."""
    env = shell.magics.env
    return wait_for(lambda: (state := api.get_run(env, dag_id, run_id).state) in ("success", "failed") and state,
                    timeout=120)


def only_run(shell: Shell, dag_id: str) -> str:
    runs = api.list_runs(shell.magics.env, dag_id)
    assert len(runs) == 1, [r.run_id for r in runs]
    return runs[0].run_id


def define(shell: Shell, *cells: str) -> None:
    for cell in cells:
        shell.ok(cell)


def test_dag_run_returns_at_once_and_the_kernel_scheduler_runs_it_to_success(shell: Shell) -> None:
    define(shell, *CHAIN)
    assert "scheduler started in this kernel" in shell.ok("%nbflow scheduler start").out
    queued = shell.ok("%dag run chain --conf '{\"x\": 1}'")
    assert queued.out.startswith("queued run manual__")
    run_id = only_run(shell, "chain")
    assert ended(shell, "chain", run_id) == "success"
    assert shell.ok("%xcom chain two").value == 2
    assert shell.ok(f"%xcom chain one --run {run_id}").value == 1
    assert api.get_run(shell.magics.env, "chain", run_id).conf == {"x": 1}


def test_the_widget_of_dag_run_follows_the_kernel_schedulers_run_to_its_end(shell: Shell) -> None:
    define(shell, *CHAIN[:2], "%%task two --upstream one\nprint('two got', one)\none + 1")
    shell.ok("%nbflow scheduler start")
    shell.ok("%dag run chain")
    widget = shell.magics.widgets[-1]  # refreshed by the kernel's refresher thread, not by this test
    run_id = only_run(shell, "chain")
    widget.selected_task = "two"
    wait_for(lambda: widget.states == {"one": "success", "two": "success"}, timeout=120)
    assert widget.run_id == run_id
    wait_for(lambda: "two got 1" in widget.log and "[nbflow] success after" in widget.log, timeout=30)
    wait_for(lambda: any(r["run_id"] == run_id and r["state"] == "success" for r in widget.runs), timeout=30)
    assert [(row["task_id"], row["state"], row["try_number"]) for row in widget.tasks] == \
        [("one", "success", 1), ("two", "success", 1)]
    assert node_fill(widget.static_html(), "two") == STATE_COLORS["success"]


def test_a_redefined_task_runs_its_new_code_in_the_next_run(shell: Shell) -> None:
    define(shell, *CHAIN)
    shell.ok("%nbflow scheduler start")
    shell.ok("%dag run chain")
    assert ended(shell, "chain", only_run(shell, "chain")) == "success"
    shell.ok("%%task two --upstream one\none * 100")
    shell.ok("%%task three --upstream two\ntwo + 1")
    shell.ok("%dag run chain")
    latest = api.list_runs(shell.magics.env, "chain")[0].run_id
    assert ended(shell, "chain", latest) == "success"
    assert shell.ok("%xcom chain two").value == 100
    assert shell.ok("%xcom chain three").value == 101


def test_a_removed_edge_is_gone_from_the_next_run(shell: Shell, tmp_path: Path) -> None:
    marks = tmp_path / "order.txt"
    define(shell, "%%dag edges\npass",
           f"%%task slow\nimport time; time.sleep(0.5); open({str(marks)!r}, 'a').write('slow\\n')",
           f"%%task after --upstream slow\nopen({str(marks)!r}, 'a').write('after\\n')")
    shell.ok(f"%%task after\nprint(sorted(context['ti'].task.upstream_task_ids))\n'free'")
    assert shell.magics.kernel_dags.dag("edges").task_dict["after"].upstream_task_ids == set()
    shell.ok("%nbflow scheduler start")
    shell.ok("%dag run edges")
    assert ended(shell, "edges", only_run(shell, "edges")) == "success"
    assert shell.ok("%xcom edges after").value == "free"
    log = api.log_path(shell.magics.env, "edges", only_run(shell, "edges"), "after", None).read_text()
    assert "[]" in log  # the task saw no upstream


def test_stop_ends_the_scheduler_and_leaves_no_child_process(shell: Shell) -> None:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    define(shell, *CHAIN)
    shell.ok("%nbflow scheduler start")
    shell.ok("%dag run chain")
    assert ended(shell, "chain", only_run(shell, "chain")) == "success"
    started = [p for p in me.children(recursive=True) if p.pid not in before]
    assert started, "the scheduler spawned its worker"
    assert shell.ok("%nbflow scheduler stop").out.strip() == "scheduler stopped"
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not shell.magics._scheduler.running


def test_status_says_whether_it_runs_and_what_it_did(shell: Shell) -> None:
    assert shell.ok("%nbflow scheduler status").out.strip() == "scheduler stopped"
    define(shell, *CHAIN)
    shell.ok("%nbflow scheduler start")
    assert "already running" in shell.ok("%nbflow scheduler start").out
    shell.ok("%dag run chain")
    run_id = only_run(shell, "chain")
    ended(shell, "chain", run_id)
    status = shell.ok("%nbflow scheduler status").out
    assert status.startswith("scheduler running since ") and "1 DAG(s)" in status
    wait_for(lambda: f"DAG run chain {run_id}: success" in shell.ok("%nbflow scheduler status").out)
    shell.ok("%nbflow scheduler stop")
    assert shell.ok("%nbflow scheduler status").out.startswith("scheduler stopped")
    assert "no scheduler is running" in shell.ok("%nbflow scheduler stop").out


def test_a_kernel_dag_with_a_schedule_runs_on_it_without_dag_run(shell: Shell) -> None:
    define(shell, "%%dag daily --schedule @daily --start-date 2025-01-01\npass", "%%task hello\n'hi'")
    shell.ok("%nbflow scheduler start")
    env = shell.magics.env
    runs = wait_for(lambda: api.list_runs(env, "daily"), timeout=120)
    assert [r.run_type for r in runs] == ["scheduled"]
    assert ended(shell, "daily", runs[0].run_id) == "success"
    assert shell.ok("%xcom daily hello").value == "hi"


def test_a_dag_defined_after_start_is_scheduled_too(shell: Shell) -> None:
    shell.ok("%nbflow scheduler start")
    define(shell, *CHAIN)
    shell.ok("%dag run chain")
    assert ended(shell, "chain", only_run(shell, "chain")) == "success"


def test_dag_run_of_a_paused_dag_says_so_and_unpause_lets_it_run(ipython: Shell, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    define(ipython, *CHAIN)  # a DAG defined in the kernel is not paused at creation: the user pauses it
    ipython.ok("%nbflow scheduler start")
    assert ipython.ok("%dag pause chain").out.strip() == "DAG chain paused"
    queued = ipython.ok("%dag run chain").out
    assert "DAG chain is paused, so the run waits: unpause it with `%dag unpause chain`" in queued
    run_id = only_run(ipython, "chain")
    assert api.get_run(ipython.magics.env, "chain", run_id).state == "queued"
    assert ipython.ok("%dag unpause chain").out.strip() == "DAG chain unpaused"
    assert ended(ipython, "chain", run_id) == "success"
