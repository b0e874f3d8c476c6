"""Task alert e-mails (email, email_on_failure, email_on_retry) under a real `nbflow scheduler` and the local
executor, received by a real SMTP server (aiosmtpd)."""
from __future__ import annotations

from tests.conftest import write_dag
from tests.notifications.conftest import running_scheduler
from tests.runtime.scheduler_helpers import wait_for
from tests.smtp import free_port

FLAKY = """
import os
from datetime import timedelta
from nbflow import DAG
from nbflow.operators.python import PythonOperator

def download():
    {body}

with DAG("flaky", schedule=None, default_args={{"email": "{to}", "email_on_retry": {on_retry}}}):
    PythonOperator(task_id="download", python_callable=download, retries={retries},
                   retry_delay=timedelta(seconds=0.1))
"""


def flaky(env, *, retries: int = 2, on_retry: bool = False, to: str = "oncall@x.org, lead@x.org",
          body: str = "raise ConnectionError('the server hung up')") -> None:
    write_dag(env.dags, "flaky.py", FLAKY.format(body=body, to=to, on_retry=on_retry, retries=retries))


def test_one_email_after_the_last_retry_fails_and_none_for_the_earlier_tries(mail_env, smtp_server) -> None:
    flaky(mail_env)
    with running_scheduler(mail_env) as scheduler:
        run_id, state = scheduler.run("flaky")
    assert state == "failed"
    [mail] = smtp_server.received()
    assert mail.subject == f"nbflow alert: <TaskInstance: flaky.download {run_id} [failed]>"
    assert mail.recipients == ["oncall@x.org", "lead@x.org"]
    body = mail.html()
    assert "Try 3 out of 3" in body and "the server hung up" in body
    assert "task_id=download" in body and "attempt=3.log" in body


def test_email_on_retry_sends_one_per_retry_and_one_at_the_end(mail_env, smtp_server) -> None:
    flaky(mail_env, on_retry=True)
    with running_scheduler(mail_env) as scheduler:
        run_id, _ = scheduler.run("flaky")
    subjects = [mail.subject for mail in smtp_server.received()]
    assert subjects == [f"nbflow alert: <TaskInstance: flaky.download {run_id} [{state}]>"
                        for state in ("up_for_retry", "up_for_retry", "failed")]


def test_a_task_that_succeeds_sends_nothing(mail_env, smtp_server) -> None:
    flaky(mail_env, body="return 1")
    with running_scheduler(mail_env) as scheduler:
        assert scheduler.run("flaky")[1] == "success"
    assert smtp_server.received() == []


def test_an_unreachable_mail_server_leaves_the_task_state_alone_and_logs_one_line(env, monkeypatch) -> None:
    port = free_port()
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_PORT", str(port))
    flaky(env, retries=1, on_retry=True, to="a@x.org", body="1 / 0")
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("flaky")
        assert state == "failed"
        for try_number in (1, 2):
            log = scheduler.task_log("flaky", run_id, "download", try_number)
            assert [line for line in log.splitlines() if line.startswith("[nbflow] email")] == [
                f"[nbflow] email to a@x.org failed: could not send e-mail through 127.0.0.1:{port} "
                f"(connection refused)"]
        assert scheduler.process.poll() is None


def test_a_wrong_password_is_one_line_in_the_task_log_without_the_password(env, smtp_auth_server, monkeypatch) -> None:
    for key, value in smtp_auth_server.settings_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_USER", "nbflow")
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_PASSWORD", "wrong-s3cret")
    flaky(env, retries=0, to="a@x.org")
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("flaky")
        log = scheduler.task_log("flaky", run_id, "download", 1)
    assert state == "failed"
    [line] = [line for line in log.splitlines() if line.startswith("[nbflow] email")]
    assert line.startswith(f"[nbflow] email to a@x.org failed: could not send e-mail through "
                           f"127.0.0.1:{smtp_auth_server.port} (authentication failed for user 'nbflow': 535")
    assert "wrong-s3cret" not in log and smtp_auth_server.received() == []


def test_an_attempt_that_dies_hard_still_sends_its_failure_email_from_the_callback_process(mail_env,
                                                                                            smtp_server) -> None:
    flaky(mail_env, retries=0, to="a@x.org", body="os._exit(9)")
    with running_scheduler(mail_env) as scheduler:
        run_id, state = scheduler.run("flaky")
        assert state == "failed"
        [mail] = wait_for(smtp_server.received, timeout=90)
    assert mail.subject == f"nbflow alert: <TaskInstance: flaky.download {run_id} [failed]>"
    assert "exited with code 9" in mail.html() and "attempt=1.log" in mail.html()
