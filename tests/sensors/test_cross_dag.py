"""Cross-DAG orchestration under a real `nbflow scheduler` (local executor, SQLite file).

TriggerDagRunOperator starts and waits for another DAG; ExternalTaskSensor waits for another DAG's
task (success, failure, timeout, a DAG that does not exist); clearing an ExternalTaskMarker clears
its target in the other DAG.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.sensors.scheduler_run import running_scheduler

PAIR = """
import json
from datetime import datetime
from pathlib import Path
from nbflow import DAG
from nbflow.operators.python import PythonOperator
from nbflow.operators.trigger_dagrun import TriggerDagRunOperator

OUT = Path({out!r})

def record(**context):
    OUT.write_text(json.dumps(context["dag_run"].conf))
    if context["dag_run"].conf.get("fail"):
        raise RuntimeError("asked to fail")

with DAG("controller", schedule=None, start_date=datetime(2025, 1, 1)):
    TriggerDagRunOperator(task_id="trigger", trigger_dag_id="{target}", conf={{"day": "{{{{ ds }}}}", "fail": {fail}}},
                          wait_for_completion=True, poke_interval=0.2, trigger_run_id="from_{{{{ run_id }}}}")

with DAG("target", schedule=None, start_date=datetime(2025, 1, 1)):
    PythonOperator(task_id="work", python_callable=record)
"""


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


def pair(env, tmp_path, *, target: str = "target", fail: bool = False) -> None:
    write_dag(env.dags, "pair.py", PAIR.format(out=str(tmp_path / "conf.json"), target=target, fail=fail))


def test_the_controller_triggers_the_target_with_templated_conf_and_waits_for_it(env, tmp_path) -> None:
    pair(env, tmp_path)
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("controller")
        target_run = api.get_run(scheduler.env, "target", f"from_{run_id}")
        trigger = scheduler.instance("controller", run_id, "trigger")
        assert state == "success"
        assert target_run.state == "success" and target_run.end_date <= trigger.end_date
        assert json.loads((tmp_path / "conf.json").read_text()) == {
            "day": api.get_run(scheduler.env, "controller", run_id).logical_date.strftime("%Y-%m-%d"), "fail": False}
        assert api.get_xcom(scheduler.env, "controller", "trigger", run_id, key="trigger_run_id").value == f"from_{run_id}"


def test_the_controller_fails_when_the_target_run_fails(env, tmp_path) -> None:
    pair(env, tmp_path, fail=True)
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("controller")
        assert state == "failed"
        assert api.get_run(scheduler.env, "target", f"from_{run_id}").state == "failed"
        assert f"triggered DAG 'target' run 'from_{run_id}' ended failed" in scheduler.log("controller", run_id,
                                                                                          "trigger")


def test_triggering_an_unknown_dag_fails_the_task_with_a_line_naming_it(env, tmp_path) -> None:
    pair(env, tmp_path, target="no_such_dag")
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("controller")
        failure = [line for line in scheduler.log("controller", run_id, "trigger").splitlines()
                   if line.startswith("[nbflow] task failed")]
        assert state == "failed"
        assert len(failure) == 1 and "DAG 'no_such_dag' not found" in failure[0]


SENSING = """
from datetime import datetime, timedelta
from nbflow import DAG
from nbflow.operators.python import PythonOperator
from nbflow.sensors.external_task import ExternalTaskSensor

def upstream_work():
    {upstream_body}

with DAG("upstream", schedule=None, start_date=datetime(2025, 1, 1)):
    PythonOperator(task_id="produce", python_callable=upstream_work)

with DAG("downstream", schedule=None, start_date=datetime(2025, 1, 1)):
    ExternalTaskSensor(task_id="wait", external_dag_id="{external_dag}", external_task_id="produce",
                       failed_states=["failed"], poke_interval=0.2, timeout={timeout}, mode="{mode}",
                       check_existence=True)
"""

MOMENT = datetime(2025, 3, 1, tzinfo=timezone.utc)


def sensing(env, *, upstream_body: str = "return 1", external_dag: str = "upstream", timeout: float = 60,
            mode: str = "reschedule") -> None:
    write_dag(env.dags, "sensing.py", SENSING.format(upstream_body=upstream_body, external_dag=external_dag,
                                                     timeout=timeout, mode=mode))


@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_an_external_task_sensor_succeeds_once_the_other_dags_task_succeeded(env, mode) -> None:
    sensing(env, mode=mode)
    with running_scheduler(env) as scheduler:
        waiting = scheduler.trigger("downstream", logical_date=MOMENT)
        upstream = scheduler.trigger("upstream", logical_date=MOMENT)
        assert scheduler.wait_run("downstream", waiting) == "success"
        produced = scheduler.instance("upstream", upstream, "produce")
        assert produced.end_date <= scheduler.instance("downstream", waiting, "wait").end_date


def test_an_external_task_sensor_fails_when_the_other_task_fails(env) -> None:
    sensing(env, upstream_body="raise RuntimeError('broken')")
    with running_scheduler(env) as scheduler:
        upstream = scheduler.trigger("upstream", logical_date=MOMENT)
        assert scheduler.wait_run("upstream", upstream) == "failed"
        waiting = scheduler.trigger("downstream", logical_date=MOMENT)
        assert scheduler.wait_run("downstream", waiting) == "failed"
        assert "task(s) produce of DAG 'upstream' ended in a failed state" in scheduler.log("downstream", waiting,
                                                                                             "wait")


def test_an_external_task_sensor_times_out_when_the_other_dag_never_runs(env) -> None:
    sensing(env, timeout=1.0)
    with running_scheduler(env) as scheduler:
        waiting = scheduler.trigger("downstream", logical_date=MOMENT)
        assert scheduler.wait_run("downstream", waiting) == "failed"
        assert "NbflowSensorTimeout" in scheduler.log("downstream", waiting, "wait")


def test_an_external_task_sensor_naming_a_missing_dag_fails_with_a_line_naming_it(env) -> None:
    sensing(env, external_dag="nowhere")
    with running_scheduler(env) as scheduler:
        waiting = scheduler.trigger("downstream", logical_date=MOMENT)
        assert scheduler.wait_run("downstream", waiting) == "failed"
        failure = [line for line in scheduler.log("downstream", waiting, "wait").splitlines()
                   if line.startswith("[nbflow] task failed")]
        assert len(failure) == 1 and "the external DAG 'nowhere' does not exist" in failure[0]


MARKED = """
from datetime import datetime
from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
from nbflow.sensors.external_task import ExternalTaskMarker

with DAG("parent", schedule=None, start_date=datetime(2025, 1, 1)):
    ExternalTaskMarker(task_id="mark", external_dag_id="child", external_task_id="consume")

with DAG("child", schedule=None, start_date=datetime(2025, 1, 1)):
    EmptyOperator(task_id="consume") >> EmptyOperator(task_id="after")
    EmptyOperator(task_id="unrelated")
"""


def test_clearing_an_external_task_marker_clears_its_target_and_downstream_in_the_other_dag(env) -> None:
    write_dag(env.dags, "marked.py", MARKED)
    with running_scheduler(env) as scheduler:
        parent = scheduler.trigger("parent", logical_date=MOMENT)
        child = scheduler.trigger("child", logical_date=MOMENT)
        assert scheduler.wait_run("parent", parent) == "success" and scheduler.wait_run("child", child) == "success"
        scheduler.process.terminate()
        scheduler.process.wait(timeout=60)
        cleared = api.clear_tasks(scheduler.env, "parent", parent, ["mark"])
        assert cleared == 3
        assert scheduler.states("child", child) == {"consume": None, "after": None, "unrelated": "success"}
        assert scheduler.states("parent", parent) == {"mark": None}


REPEATED = """
from datetime import datetime
from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
from nbflow.operators.trigger_dagrun import TriggerDagRunOperator

with DAG("controller", schedule=None, start_date=datetime(2025, 1, 1)):
    TriggerDagRunOperator(task_id="trigger", trigger_dag_id="target", trigger_run_id="always_the_same",
                          {options})

with DAG("target", schedule=None, start_date=datetime(2025, 1, 1)):
    EmptyOperator(task_id="work")
"""


def test_skip_when_already_exists_skips_a_second_trigger_of_the_same_run(env) -> None:
    write_dag(env.dags, "repeated.py", REPEATED.format(options="skip_when_already_exists=True"))
    with running_scheduler(env) as scheduler:
        first, _ = scheduler.run("controller")
        second, _ = scheduler.run("controller")
        assert scheduler.states("controller", first) == {"trigger": "success"}
        assert scheduler.states("controller", second) == {"trigger": "skipped"}
        assert "already has run 'always_the_same'" in scheduler.log("controller", second, "trigger")


def test_reset_dag_run_replaces_the_existing_run_and_without_it_the_trigger_fails(env) -> None:
    write_dag(env.dags, "repeated.py", REPEATED.format(options="reset_dag_run=True, wait_for_completion=True, "
                                                                "poke_interval=0.2"))
    with running_scheduler(env) as scheduler:
        scheduler.run("controller")
        before = api.get_run(scheduler.env, "target", "always_the_same")
        _, state = scheduler.run("controller")
        after = api.get_run(scheduler.env, "target", "always_the_same")
        assert state == "success" and after.state == "success" and after.queued_at > before.end_date
    write_dag(env.dags, "repeated.py", REPEATED.format(options=""))
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("controller")
        assert state == "failed"
        assert "DagRunAlreadyExists: DAG 'target' already has a run 'always_the_same'" in scheduler.log(
            "controller", run_id, "trigger")


def test_an_external_task_sensor_looks_back_by_execution_delta(env) -> None:
    write_dag(env.dags, "sensing.py", SENSING.format(upstream_body="return 1", external_dag="upstream", timeout=60,
                                                     mode="poke").replace(
        'check_existence=True)', 'check_existence=True, execution_delta=timedelta(hours=1))'))
    with running_scheduler(env) as scheduler:
        upstream = scheduler.trigger("upstream", logical_date=MOMENT)
        assert scheduler.wait_run("upstream", upstream) == "success"
        waiting = scheduler.trigger("downstream", logical_date=MOMENT + timedelta(hours=1))
        assert scheduler.wait_run("downstream", waiting) == "success"
        assert f"at {MOMENT.isoformat()}" in scheduler.log("downstream", waiting, "wait")


def test_an_external_task_sensor_without_a_task_waits_for_the_whole_run(env) -> None:
    write_dag(env.dags, "sensing.py", SENSING.format(upstream_body="return 1", external_dag="upstream", timeout=60,
                                                     mode="reschedule").replace(
        'external_task_id="produce",', ''))
    with running_scheduler(env) as scheduler:
        waiting = scheduler.trigger("downstream", logical_date=MOMENT)
        upstream = scheduler.trigger("upstream", logical_date=MOMENT)
        assert scheduler.wait_run("downstream", waiting) == "success"
        assert api.get_run(scheduler.env, "upstream", upstream).end_date <= \
            scheduler.instance("downstream", waiting, "wait").end_date
        assert "poking for DAG 'upstream'" in scheduler.log("downstream", waiting, "wait")
