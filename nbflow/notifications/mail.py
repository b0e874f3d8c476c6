"""`send_email(to, subject, html_content, ...)` with Airflow's signature (`airflow.utils.email.send_email`).

Reads the configuration where it is called (a callback, an operator), so a task sends through the
SMTP server its process is configured for: connection `conn_id` (default `[email] email_conn_id`,
`smtp_default`) when a secrets backend holds it, else `[smtp]`.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nbflow.notifications.smtp_client import SmtpSettings
from nbflow.notifications.smtp_client import send_email as _send


def settings_for(conn_id: str | None = None) -> tuple[SmtpSettings, str | None]:
    """(SMTP settings, [email] from_email or None) for connection `conn_id` or the configured one."""
    from nbflow.configuration import load_config
    from nbflow.notifications.smtp_client import smtp_settings

    config = load_config()
    settings = smtp_settings(config, conn_id or config.get("email", "email_conn_id") or None)
    return settings, config.get("email", "from_email") or None


def send_email(to: str | Iterable[str], subject: str, html_content: str, files: Iterable[str | Path] | None = None,
               dryrun: bool = False, cc: str | Iterable[str] | None = None, bcc: str | Iterable[str] | None = None,
               mime_subtype: str = "mixed", mime_charset: str = "utf-8", conn_id: str | None = None,
               from_email: str | None = None, **kwargs: Any) -> list[str]:
    """Send one e-mail; the envelope's recipients. Raises EmailDeliveryError (one line: host:port, cause)."""
    settings, configured_from = settings_for(conn_id)
    if dryrun:
        return []
    return _send(settings, to, subject, html_content, cc=cc, bcc=bcc, files=files, mime_charset=mime_charset,
                 from_email=from_email or configured_from)
