"""SmtpNotifier (Airflow's `airflow.providers.smtp.notifications.smtp.SmtpNotifier`): an e-mail as a callback."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nbflow.notifications.basenotifier import BaseNotifier
from nbflow.notifications.smtp_client import addresses


class SmtpNotifier(BaseNotifier):
    """Send an e-mail when called; subject and body default to the task alert's (alerts.py)."""

    template_fields = ("from_email", "to", "subject", "html_content", "files", "cc", "bcc")

    def __init__(self, to: str | Iterable[str], *, from_email: str | None = None, subject: str | None = None,
                 html_content: str | None = None, files: list[str] | None = None,
                 cc: str | Iterable[str] | None = None, bcc: str | Iterable[str] | None = None,
                 mime_charset: str = "utf-8", smtp_conn_id: str = "smtp_default") -> None:
        from nbflow.notifications.alerts import DEFAULT_HTML, DEFAULT_SUBJECT

        self.to, self.from_email, self.cc, self.bcc, self.files = to, from_email, cc, bcc, files
        self.subject = subject if subject is not None else DEFAULT_SUBJECT
        self.html_content = html_content if html_content is not None else DEFAULT_HTML
        self.mime_charset, self.smtp_conn_id = mime_charset, smtp_conn_id

    def render_template_fields(self, context: dict[str, Any], jinja_env: Any = None) -> None:
        from nbflow.notifications.alerts import alert_variables

        super().render_template_fields({**alert_variables(context), **context}, jinja_env)

    def notify(self, context: dict[str, Any]) -> None:
        from nbflow.notifications.mail import send_email

        send_email(self.to, self.subject, self.html_content, files=self.files, cc=self.cc, bcc=self.bcc,
                   mime_charset=self.mime_charset, conn_id=self.smtp_conn_id, from_email=self.from_email)

    def describe(self) -> str:
        return f"{type(self).__name__} to {', '.join(addresses(self.to))}"


send_smtp_notification = SmtpNotifier  # Airflow's lower-case alias
