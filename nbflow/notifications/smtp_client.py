"""Sending one e-mail over SMTP: settings from an `smtp_default` connection or `[smtp]`, bounded and retried.

Every failure is one `EmailDeliveryError` naming host:port and the cause (connection refused, timed
out, authentication failed, no STARTTLS...), never the password: callers write that one line to a
task's log, so a down mail server costs a task at most smtp_timeout x smtp_retry_limit seconds.
"""
from __future__ import annotations

import json
import smtplib
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, replace
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import ConnectionNotFound, EmailDeliveryError, NbflowException
from nbflow.utils.masking import masker

if TYPE_CHECKING:
    from nbflow.configuration import Config

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to hand mail over; Airflow's [smtp] keys without the prefix."""

    host: str = "localhost"
    port: int = 25
    starttls: bool = True
    ssl: bool = False
    user: str = ""
    password: str = ""
    mail_from: str = "nbflow@example.com"
    timeout: float = 30.0
    retry_limit: int = 5  # connection attempts in all, as Airflow's smtp_retry_limit

    def __repr__(self) -> str:  # never the password, whoever prints the settings
        return f"SmtpSettings({self.host}:{self.port}, starttls={self.starttls}, ssl={self.ssl}, user={self.user!r})"


def settings_from_config(config: "Config") -> SmtpSettings:
    """The `[smtp]` section (environment NBFLOW__SMTP__* or nbflow.toml)."""
    get = config.get
    return SmtpSettings(host=get("smtp", "smtp_host"), port=config.getint("smtp", "smtp_port"),
                        starttls=config.getboolean("smtp", "smtp_starttls"), ssl=config.getboolean("smtp", "smtp_ssl"),
                        user=get("smtp", "smtp_user"), password=get("smtp", "smtp_password"),
                        mail_from=get("smtp", "smtp_mail_from"), timeout=config.getfloat("smtp", "smtp_timeout"),
                        retry_limit=max(1, config.getint("smtp", "smtp_retry_limit")))


def smtp_settings(config: "Config", conn_id: str | None = "smtp_default") -> SmtpSettings:
    """`[smtp]`, overridden by connection `conn_id` when a secrets backend holds it (Airflow's precedence).

    The connection gives host, port, login and password; its extra may say `starttls`/`ssl` (or the SMTP
    provider's `disable_tls`/`disable_ssl`), `from_email`, `timeout` and `retry_limit`.
    """
    base = settings_from_config(config)
    if not conn_id:
        return base
    from nbflow.secrets.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except ConnectionNotFound:
        return base
    extra = _extra(conn.extra)
    use_ssl = _flag(extra, "ssl", not _flag(extra, "disable_ssl", not base.ssl))
    return replace(base, host=conn.host or base.host, port=int(conn.port or (465 if use_ssl else base.port)),
                   user=conn.login or "", password=conn.password or "", ssl=use_ssl,
                   starttls=_flag(extra, "starttls", not _flag(extra, "disable_tls", not base.starttls)),
                   mail_from=str(extra.get("from_email") or base.mail_from),
                   timeout=float(extra.get("timeout", base.timeout)),
                   retry_limit=max(1, int(extra.get("retry_limit", base.retry_limit))))


def addresses(value: str | Iterable[str] | None) -> list[str]:
    """'a@x, b@y; c@z' or a list of them, as a flat list (Airflow's get_email_address_list)."""
    if not value:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [part.strip() for item in items for part in str(item).replace(";", ",").split(",") if part.strip()]


def build_message(*, mail_from: str, to: list[str], subject: str, html_content: str, cc: list[str] = (),
                  files: Iterable[str | Path] = (), mime_charset: str = "utf-8",
                  mime_subtype: str = "mixed") -> MIMEMultipart:
    """The MIME message; Bcc never appears in it (only among the envelope's recipients)."""
    message = MIMEMultipart(mime_subtype)
    message["Subject"] = subject
    message["From"] = mail_from
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Date"] = formatdate(localtime=True)
    message.attach(MIMEText(html_content or "", "html", mime_charset))
    for name in files or ():
        path = Path(name)
        if not path.is_file():
            raise NbflowException(f"e-mail attachment {path} does not exist; fix the path in `files`")
        part = MIMEApplication(path.read_bytes(), Name=path.name)
        part["Content-Disposition"] = f'attachment; filename="{path.name}"'
        message.attach(part)
    return message


def send_email(settings: SmtpSettings, to: str | Iterable[str], subject: str, html_content: str, *,
               cc: str | Iterable[str] | None = None, bcc: str | Iterable[str] | None = None,
               files: Iterable[str | Path] | None = None, mime_charset: str = "utf-8",
               from_email: str | None = None) -> list[str]:
    """Send one message; the envelope's recipients (to + cc + bcc). Raises EmailDeliveryError."""
    to_list, cc_list, bcc_list = addresses(to), addresses(cc), addresses(bcc)
    recipients = [*to_list, *cc_list, *bcc_list]
    if not recipients:
        raise NbflowException("e-mail has no recipient; give `to` (or email= on the task)")
    mail_from = from_email or settings.mail_from
    message = build_message(mail_from=mail_from, to=to_list, subject=subject, html_content=html_content,
                            cc=cc_list, files=files or (), mime_charset=mime_charset)
    deliver(settings, mail_from, recipients, message.as_string())
    return recipients


def deliver(settings: SmtpSettings, mail_from: str, recipients: list[str], text: str) -> None:
    """Hand `text` over; connecting is retried up to retry_limit times, each bounded by the timeout."""
    if settings.password:
        masker.add(settings.password)
    for attempt in range(1, settings.retry_limit + 1):
        try:
            client = _connect(settings)
        except (OSError, smtplib.SMTPException) as err:
            if attempt == settings.retry_limit or not _transient(err):
                raise EmailDeliveryError(settings.host, settings.port, _cause(err, settings)) from None
            continue
        try:
            _send(client, settings, mail_from, recipients, text)
        except (OSError, smtplib.SMTPException) as err:
            raise EmailDeliveryError(settings.host, settings.port, _cause(err, settings)) from None
        finally:
            _close(client)
        return


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.ssl:
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                context=ssl.create_default_context())
    return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)


def _send(client: smtplib.SMTP, settings: SmtpSettings, mail_from: str, recipients: list[str], text: str) -> None:
    if settings.starttls and not settings.ssl:
        client.starttls(context=ssl.create_default_context())
    if settings.user and settings.password:
        client.login(settings.user, settings.password)
    client.sendmail(mail_from, recipients, text)


def _close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _transient(err: BaseException) -> bool:
    """Worth connecting again: the server dropped us or did not answer in time (Airflow retries the same)."""
    return isinstance(err, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, TimeoutError,
                            ConnectionResetError))


def _cause(err: BaseException, settings: SmtpSettings) -> str:
    """What went wrong, in words a user acts on; never the password."""
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, (TimeoutError, socket.timeout)) or isinstance(err.__context__, (TimeoutError, socket.timeout)):
        return f"no answer within {settings.timeout:g} s, [smtp] smtp_timeout"
    if isinstance(err, socket.gaierror):
        return f"unknown host {settings.host!r}"
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return f"authentication failed for user {settings.user!r}: {_reply(err)}"
    if isinstance(err, smtplib.SMTPNotSupportedError) and "STARTTLS" in str(err).upper():
        return "the server does not offer STARTTLS; set [smtp] smtp_starttls = false or use a TLS server"
    if isinstance(err, smtplib.SMTPNotSupportedError) and "AUTH" in str(err).upper():
        return "the server does not offer AUTH; remove the user and password, or use STARTTLS"
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return "recipients refused: " + ", ".join(f"{who} ({_reply(code)})" for who, code in err.recipients.items())
    if isinstance(err, smtplib.SMTPSenderRefused):
        return f"sender {err.sender!r} refused: {_reply(err)}"
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({err or 'no reason given'})"
    if isinstance(err, ssl.SSLError):
        return f"TLS failed: {err.reason or err}"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return f"{type(err).__name__}: {err}"


def _reply(err: Any) -> str:
    code, text = (err.smtp_code, err.smtp_error) if hasattr(err, "smtp_code") else tuple(err)[:2]
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}"


def _extra(extra: str | None) -> dict[str, Any]:
    try:
        value = json.loads(extra) if extra else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _flag(extra: dict[str, Any], key: str, default: bool) -> bool:
    if key not in extra:
        return default
    value = extra[key]
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE
