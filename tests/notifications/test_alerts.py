"""The alert's subject and body (alerts.py): Airflow's defaults adapted, or `[email]` template files."""
from __future__ import annotations

import io
from pathlib import Path

from nbflow import DAG
from nbflow.configuration import load_config
from nbflow.notifications.alerts import render_alert, send_alert
from nbflow.operators.empty import EmptyOperator


def context_of(task, **extra) -> dict:
    return {"dag": task.dag, "task": task, "run_id": "manual__1", "try_number": 2,
            "exception": ValueError("bad <row>"), "log_path": "/logs/attempt=2.log", **extra}


def make_task(**kwargs) -> EmptyOperator:
    with DAG("etl", schedule=None):
        return EmptyOperator(task_id="load", retries=2, **kwargs)


def test_the_default_alert_names_the_task_instance_try_exception_and_log(nbflow_env) -> None:
    subject, body = render_alert(context_of(make_task(), state="up_for_retry"), load_config())
    assert subject == "nbflow alert: <TaskInstance: etl.load manual__1 [up_for_retry]>"
    assert "Try 2 out of 3" in body and "bad &lt;row&gt;" in body and "Log: /logs/attempt=2.log" in body


def test_email_template_files_replace_subject_and_body(nbflow_env, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "subject.j2").write_text("[{{ dag.dag_id }}] {{ task.task_id }} is {{ state }}\n")
    (tmp_path / "body.j2").write_text("try {{ try_number }}: {{ exception }}")
    monkeypatch.setenv("NBFLOW__EMAIL__SUBJECT_TEMPLATE", str(tmp_path / "subject.j2"))
    monkeypatch.setenv("NBFLOW__EMAIL__HTML_CONTENT_TEMPLATE", str(tmp_path / "body.j2"))
    assert render_alert(context_of(make_task(), state="failed"), load_config()) == (
        "[etl] load is failed", "try 2: bad <row>")


def test_a_missing_template_file_is_one_line_in_the_log_and_nothing_else(nbflow_env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__EMAIL__SUBJECT_TEMPLATE", "/nowhere/subject.j2")
    log = io.StringIO()
    assert send_alert(make_task(email="a@x.org"), context_of(make_task()), "failed", log) is False
    assert log.getvalue() == ("[nbflow] email to a@x.org failed: [email] subject_template = '/nowhere/subject.j2' "
                              "cannot be read: No such file or directory\n")


def test_a_task_without_email_or_with_the_flag_off_sends_nothing(nbflow_env) -> None:
    log = io.StringIO()
    assert send_alert(make_task(), context_of(make_task()), "failed", log) is False
    off = make_task(email="a@x.org", email_on_retry=False)
    assert send_alert(off, context_of(off), "up_for_retry", log) is False
    assert log.getvalue() == ""
