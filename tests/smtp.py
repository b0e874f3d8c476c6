"""A real SMTP server for tests: aiosmtpd on a free loopback port, keeping every message it accepted.

`SmtpServer(password=...)` also offers AUTH (without TLS, as a local relay may) and accepts only that
password, so a wrong one is a real 535 from a real server.
"""
from __future__ import annotations

import email
import socket
import threading
from dataclasses import dataclass
from email.message import Message
from typing import Any


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    recipients: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return " ".join(str(self.message["Subject"]).split())

    def html(self) -> str:
        for part in self.message.walk():
            if part.get_content_type() == "text/html":
                return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        return ""

    def attachments(self) -> dict[str, bytes]:
        return {part.get_filename(): part.get_payload(decode=True) for part in self.message.walk()
                if part.get_filename()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """Start with `start()`, stop with `stop()`; `messages` grows as mail arrives (thread-safe)."""

    def __init__(self, *, user: str = "", password: str = "") -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self.user, self.password = user, password
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(envelope.content))
        with self._lock:
            self.messages.append(received)
        return "250 Message accepted for delivery"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False)

    def start(self) -> "SmtpServer":
        from aiosmtpd.controller import Controller

        options: dict[str, Any] = {}
        if self.password:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self, hostname=self.host, port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def settings_env(self) -> dict[str, str]:
        """What points nbflow's `[smtp]` at this server (plain SMTP, one connection attempt, short timeout)."""
        return {"NBFLOW__SMTP__SMTP_HOST": self.host, "NBFLOW__SMTP__SMTP_PORT": str(self.port),
                "NBFLOW__SMTP__SMTP_STARTTLS": "false", "NBFLOW__SMTP__SMTP_RETRY_LIMIT": "1",
                "NBFLOW__SMTP__SMTP_TIMEOUT": "10", "NBFLOW__SMTP__SMTP_MAIL_FROM": "nbflow@test.example"}
