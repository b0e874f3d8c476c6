"""Notifiers in callback lists (`on_failure_callback=[SmtpNotifier(...), fn]`), the webhook notifier of the
plugins folder and EmailOperator, under a real `nbflow scheduler` with a real SMTP and HTTP server."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.conftest import write_dag
from tests.notifications.conftest import running_scheduler
from tests.runtime.scheduler_helpers import wait_for

EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"

NOTIFIED = """
from pathlib import Path
from nbflow import DAG
from nbflow.notifications.smtp import SmtpNotifier
from nbflow.operators.python import PythonOperator

def note(context):
    Path("{marker}").write_text(context["task"].task_id if "task" in context else "dag " + context["reason"])

def fail():
    raise ValueError("bad row 7")

alert = SmtpNotifier(to="team@x.org", cc="boss@x.org", subject="{{{{ dag.dag_id }}}} {{{{ run_id }}}}: {{{{ state }}}}",
                     html_content="failed: {{{{ exception }}}}")

with DAG("{dag_id}", schedule=None, on_failure_callback={dag_callbacks}):
    PythonOperator(task_id="load", python_callable=fail, on_failure_callback={task_callbacks})
"""


def test_a_smtp_notifier_and_a_function_in_one_task_callback_list_both_run(mail_env, smtp_server,
                                                                           tmp_path: Path) -> None:
    marker = tmp_path / "called"
    write_dag(mail_env.dags, "notified.py", NOTIFIED.format(marker=marker, dag_id="notified", dag_callbacks=None,
                                                            task_callbacks="[alert, note]"))
    with running_scheduler(mail_env) as scheduler:
        run_id, state = scheduler.run("notified")
    assert state == "failed" and marker.read_text() == "load"
    [mail] = smtp_server.received()
    assert mail.subject == f"notified {run_id}: failed"
    assert mail.recipients == ["team@x.org", "boss@x.org"] and mail.html() == "failed: bad row 7"


def test_a_dag_callback_list_runs_its_notifier_and_its_function(mail_env, smtp_server, tmp_path: Path) -> None:
    marker = tmp_path / "called"
    write_dag(mail_env.dags, "notified.py", NOTIFIED.format(marker=marker, dag_id="notified",
                                                            dag_callbacks="[alert, note]", task_callbacks=None))
    with running_scheduler(mail_env) as scheduler:
        run_id, state = scheduler.run("notified")
        assert state == "failed"
        scheduler.callbacks_log("notified", run_id, until="done")
    assert marker.read_text() == "dag task load failed"
    [mail] = wait_for(smtp_server.received)
    assert mail.subject.startswith(f"notified {run_id}: ")


def test_a_failing_notifier_is_one_line_in_the_task_log_and_the_next_callback_still_runs(env, tmp_path: Path,
                                                                                          monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_PORT", "1")
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_RETRY_LIMIT", "1")
    marker = tmp_path / "called"
    write_dag(env.dags, "notified.py", NOTIFIED.format(marker=marker, dag_id="notified", dag_callbacks=None,
                                                       task_callbacks="[alert, note]"))
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("notified")
        log = scheduler.task_log("notified", run_id, "load", 1)
    assert state == "failed" and marker.read_text() == "load"
    assert [line for line in log.splitlines() if line.startswith("[nbflow] SmtpNotifier")] == [
        "[nbflow] SmtpNotifier to team@x.org failed: could not send e-mail through 127.0.0.1:1 (connection refused)"]


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((self.path, self.headers["Content-Type"], json.loads(body)))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[HTTPServer]:
    """A real HTTP server on a free loopback port that keeps what was POSTed to it."""
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    server.posts = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


WEBHOOK_DAG = """
from nbflow import DAG
from nbflow.notifications import get_notifier
from nbflow.operators.python import PythonOperator

WebhookNotifier = get_notifier("WebhookNotifier")

def fail():
    raise RuntimeError("disk full")

with DAG("hooked", schedule=None):
    PythonOperator(task_id="work", python_callable=fail,
                   on_failure_callback=WebhookNotifier(url="http://127.0.0.1:{port}/{{{{ dag.dag_id }}}}", timeout=5))
"""


def test_the_webhook_notifier_from_the_plugins_folder_posts_the_failure_as_json(env, webhook, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__PLUGINS_FOLDER", str(EXTENSIONS))
    write_dag(env.dags, "hooked.py", WEBHOOK_DAG.format(port=webhook.server_address[1]))
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("hooked")
    assert state == "failed"
    assert webhook.posts == [("/hooked", "application/json", {  # type: ignore[attr-defined]
        "dag_id": "hooked", "task_id": "work", "run_id": run_id, "state": "failed", "try_number": 1,
        "exception": "disk full"})]


def test_an_unknown_notifier_name_lists_the_known_ones(tmp_path: Path) -> None:
    from nbflow.exceptions import UnknownPluginError
    from nbflow.notifications import get_notifier

    with pytest.raises(UnknownPluginError, match=r"unknown notifier 'Pager' .*known: .*SmtpNotifier.*WebhookNotifier"):
        get_notifier("Pager", EXTENSIONS)


EMAIL_DAG = """
from nbflow import DAG
from nbflow.operators.email import EmailOperator

with DAG("mailer", schedule=None):
    EmailOperator(task_id="send", to=["a@x.org"], cc="c@x.org", bcc=["b@x.org"],
                  subject="report for {{{{ ds }}}}", html_content="<p>{{{{ dag.dag_id }}}}</p>",
                  files=["{report}"])
"""


def test_email_operator_delivers_to_cc_and_bcc_with_its_attachment(mail_env, smtp_server, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("42 rows\n")
    write_dag(mail_env.dags, "mailer.py", EMAIL_DAG.format(report=report))
    with running_scheduler(mail_env) as scheduler:
        _, state = scheduler.run("mailer")
    assert state == "success"
    [mail] = smtp_server.received()
    assert mail.recipients == ["a@x.org", "c@x.org", "b@x.org"] and mail.message["Bcc"] is None
    assert mail.subject.startswith("report for 20") and mail.html() == "<p>mailer</p>"
    assert mail.attachments() == {"report.txt": b"42 rows\n"}


def test_email_operator_fails_its_task_when_the_server_is_down_naming_it(env, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_PORT", "1")
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_RETRY_LIMIT", "1")
    report = tmp_path / "report.txt"
    report.write_text("x")
    write_dag(env.dags, "mailer.py", EMAIL_DAG.format(report=report))
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("mailer")
        log = scheduler.task_log("mailer", run_id, "send", 1)
    assert state == "failed"
    assert ("[nbflow] task failed: EmailDeliveryError: could not send e-mail through 127.0.0.1:1 "
            "(connection refused)") in log


def test_an_unreachable_webhook_is_one_line_and_never_raises(capsys) -> None:
    from nbflow.notifications import get_notifier
    from tests.smtp import free_port

    port = free_port()
    notifier = get_notifier("WebhookNotifier", EXTENSIONS)(url=f"http://127.0.0.1:{port}/hook", timeout=2)
    notifier({"run_id": "manual__1", "reason": "failed"})
    out = capsys.readouterr().out
    assert out == (f"[nbflow] WebhookNotifier to http://127.0.0.1:{port}/hook failed: [Errno 111] Connection refused "
                   f"(timeout 2 s)\n")
