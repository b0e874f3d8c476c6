"""The cell-task options of issue 15 (--retries, --retry-delay, --email, --[no-]email-on-failure/-retry) and
`%%dag --default-args JSON` in a real IPython shell, and a notebook DAG file using them under a real scheduler."""
from __future__ import annotations

from datetime import timedelta

import pytest
from IPython.core.error import UsageError

from tests.ipynb import write_cells
from tests.jupyter.conftest import Shell
from tests.notifications.conftest import running_scheduler

DAG_CELL = "%%dag etl\npass"


def test_a_cell_task_takes_retries_retry_delay_and_email_options(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    ipython.ok("%%task download --retries 5 --retry-delay 60 --email 'a@x.org, b@x.org' --no-email-on-retry\n1")
    task = ipython.magics.kernel_dags.dag("etl").task_dict["download"]
    assert (task.retries, task.retry_delay) == (5, timedelta(seconds=60))
    assert task.email == ["a@x.org", "b@x.org"]
    assert (task.email_on_failure, task.email_on_retry) == (True, False)


def test_no_email_on_failure_turns_the_failure_email_off(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    ipython.ok("%%task load --email a@x.org --no-email-on-failure\n1")
    assert ipython.magics.kernel_dags.dag("etl").task_dict["load"].email_on_failure is False


def test_dag_default_args_json_reaches_every_cell_task(ipython: Shell) -> None:
    ipython.ok("""%%dag etl --default-args '{"email": "oncall@x.org", "email_on_retry": false, "retries": 3}'\npass""")
    ipython.ok("%%task load\n1")
    task = ipython.magics.kernel_dags.dag("etl").task_dict["load"]
    assert (task.email, task.email_on_retry, task.retries) == (["oncall@x.org"], False, 3)


def test_invalid_default_args_json_is_one_line_naming_the_option(ipython: Shell) -> None:
    result = ipython.run("%%dag etl --default-args '{retries: 3}'\npass")
    assert isinstance(result.error, UsageError)
    message = str(result.error)
    assert message.startswith("%%dag: --default-args is not valid JSON (") and "\n" not in message


@pytest.fixture
def mail_env(nbflow_env, smtp_server, monkeypatch):
    """Unpaused DAGs, a quick heartbeat and [smtp] pointing at the test's SMTP server."""
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    for key, value in smtp_server.settings_env().items():
        monkeypatch.setenv(key, value)
    return nbflow_env


NOTEBOOK_FLAKY = ('%%dag nb_flaky --default-args \'{"email": "oncall@x.org"}\'\npass',
                  "%%task fetch --retries 1 --retry-delay 0.1 --no-email-on-retry\nraise OSError('host unreachable')")


def test_a_notebook_dag_file_using_the_options_sends_one_email_after_its_last_try(mail_env, smtp_server) -> None:
    write_cells(mail_env.dags / "nb_flaky.ipynb", *NOTEBOOK_FLAKY)
    with running_scheduler(mail_env) as scheduler:
        run_id, state = scheduler.run("nb_flaky")
    assert state == "failed"
    [mail] = smtp_server.received()
    assert mail.subject == f"nbflow alert: <TaskInstance: nb_flaky.fetch {run_id} [failed]>"
    assert mail.recipients == ["oncall@x.org"] and "Try 2 out of 2" in mail.html()


def test_a_cell_task_run_from_the_notebook_emails_when_it_fails(ipython: Shell, smtp_server, monkeypatch) -> None:
    for key, value in smtp_server.settings_env().items():
        monkeypatch.setenv(key, value)
    ipython.ok(DAG_CELL)
    result = ipython.run("%%task boom --email a@x.org --run\nraise KeyError('missing column')")
    assert isinstance(result.error, UsageError) and "task etl.boom failed" in str(result.error)
    [mail] = smtp_server.received()
    assert mail.recipients == ["a@x.org"] and mail.subject.startswith("nbflow alert: <TaskInstance: etl.boom ")
    assert "missing column" in mail.html()
