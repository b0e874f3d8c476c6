"""EmailOperator: send one e-mail as a task (Airflow's `airflow.operators.email.EmailOperator`).

Unlike an alert, a delivery failure fails this task: sending is its whole job. The error is one line
naming host:port and the cause (smtp_client.py); connection `conn_id` (default `smtp_default`) wins
over `[smtp]` when a secrets backend holds it.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator


class EmailOperator(BaseOperator):
    """Send `subject`/`html_content` to `to` (and `cc`, `bcc`), with `files` attached."""

    template_fields = ("to", "subject", "html_content", "files")
    template_fields_renderers = {"html_content": "html"}
    template_ext = (".html",)
    ui_color = "#e6faf9"

    def __init__(self, *, to: str | Iterable[str], subject: str, html_content: str,
                 files: list[str] | None = None, cc: str | Iterable[str] | None = None,
                 bcc: str | Iterable[str] | None = None, mime_subtype: str = "mixed", mime_charset: str = "utf-8",
                 conn_id: str | None = None, from_email: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.to, self.subject, self.html_content = to, subject, html_content
        self.files, self.cc, self.bcc = files or [], cc, bcc
        self.mime_subtype, self.mime_charset = mime_subtype, mime_charset
        self.conn_id, self.from_email = conn_id, from_email

    def execute(self, context: dict[str, Any]) -> None:
        from nbflow.notifications.mail import send_email

        recipients = send_email(self.to, self.subject, self.html_content, files=self.files, cc=self.cc, bcc=self.bcc,
                                mime_subtype=self.mime_subtype, mime_charset=self.mime_charset, conn_id=self.conn_id,
                                from_email=self.from_email)
        self.log.info("e-mail %r sent to %d recipient(s)", self.subject, len(recipients))
