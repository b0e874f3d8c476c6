"""The e-mail a task sends when it fails for good (`email_on_failure`) or goes up for retry (`email_on_retry`).

Airflow's rules and shape: sent only when the task has `email`; the subject is
`nbflow alert: <TaskInstance: dag.task run [state]>` and the body says the try, the exception, the log
and the host; `[email] subject_template` / `html_content_template` name Jinja2 files that replace them.
Sent from the attempt's process, or from the scheduler's callback child when the attempt died hard.
A failure to send is one line in that process's log and never changes a state.
"""
from __future__ import annotations

import html
import socket
from typing import TYPE_CHECKING, Any, TextIO

from nbflow.exceptions import NbflowConfigException
from nbflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from nbflow.configuration import Config

DEFAULT_SUBJECT = "nbflow alert: {{ alert_target }}"
DEFAULT_HTML = (
    "Try {{ try_number }} out of {{ max_tries + 1 }}<br>\n"
    "Exception:<br>{{ exception_html }}<br>\n"
    "Log: {{ log_path }}<br>\n"
    "Host: {{ hostname }}<br>\n"
)


def wants_email(task: Any, state: str) -> bool:
    """Whether this end of an attempt sends the task's alert (Airflow: email set, and the matching flag)."""
    if not getattr(task, "email", None):
        return False
    if state == TaskInstanceState.UP_FOR_RETRY:
        return bool(getattr(task, "email_on_retry", True))
    if state == TaskInstanceState.FAILED:
        return bool(getattr(task, "email_on_failure", True))
    return False


def alert_variables(context: dict[str, Any]) -> dict[str, Any]:
    """What the alert templates read besides the context: state, tries, exception, log, host, the target."""
    ti, task, dag = context.get("ti"), context.get("task"), context.get("dag")
    dag_id = getattr(dag, "dag_id", "") or getattr(ti, "dag_id", "")
    state = context.get("state") or getattr(ti, "state", None) or context.get("reason", "")
    exception = context.get("exception")
    if task is not None:
        target = f"<TaskInstance: {dag_id}.{task.task_id} {context.get('run_id', '')} [{state}]>"
    else:
        target = f"<DagRun: {dag_id} {context.get('run_id', '')} [{state}]>"
    try_number = context.get("try_number") or getattr(ti, "try_number", 1)
    max_tries = getattr(ti, "max_tries", None)
    if max_tries is None:
        max_tries = getattr(task, "retries", 0) or 0
    return {"state": state, "alert_target": target, "try_number": try_number, "max_tries": max_tries,
            "exception": exception, "exception_html": html.escape(str(exception or "")).replace("\n", "<br>"),
            "log_path": context.get("log_path") or getattr(ti, "log_path", None) or "",
            "hostname": getattr(ti, "hostname", None) or socket.gethostname()}


def render_alert(context: dict[str, Any], config: "Config") -> tuple[str, str]:
    """(subject, html body) of the alert, from [email]'s template files or the defaults."""
    from nbflow.authoring.templating import make_template_env

    dag = context.get("dag")
    env = dag.get_template_env() if dag is not None else make_template_env(None)
    variables = {**context, **alert_variables(context)}
    subject = env.from_string(_template(config, "subject_template", DEFAULT_SUBJECT)).render(**variables)
    body = env.from_string(_template(config, "html_content_template", DEFAULT_HTML)).render(**variables)
    return " ".join(subject.split()), body


def send_alert(task: Any, context: dict[str, Any], state: str, log: TextIO, config: "Config | None" = None) -> bool:
    """Send the task's alert for `state` if it wants one; a failure is one line in `log`. True when sent."""
    if not wants_email(task, state):
        return False
    from nbflow.configuration import load_config
    from nbflow.notifications.smtp_client import addresses, send_email, smtp_settings

    to = addresses(task.email)
    try:
        config = config or load_config()
        subject, body = render_alert({**context, "state": state}, config)
        settings = smtp_settings(config, config.get("email", "email_conn_id") or None)
        send_email(settings, to, subject, body, from_email=config.get("email", "from_email") or None)
    except Exception as err:  # noqa: BLE001 - an alert never changes the task's state
        log.write(f"[nbflow] email to {', '.join(to)} failed: {err}\n")
        return False
    log.write(f"[nbflow] {state} email sent to {', '.join(to)}\n")
    return True


def _template(config: "Config", key: str, default: str) -> str:
    path = config.get("email", key)
    if not path:
        return default
    try:
        return config.path("email", key).read_text(encoding="utf-8")
    except OSError as err:
        raise NbflowConfigException(f"[email] {key} = {path!r} cannot be read: {err.strerror}") from None
