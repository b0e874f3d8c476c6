"""Sending one e-mail (nbflow.notifications.smtp_client) to a real aiosmtpd server on a loopback port."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from nbflow.configuration import load_config
from nbflow.exceptions import EmailDeliveryError, NbflowException
from nbflow.notifications.smtp_client import send_email, smtp_settings
from tests.smtp import free_port


@pytest.fixture
def smtp_env(nbflow_env, smtp_server, monkeypatch):
    for key, value in smtp_server.settings_env().items():
        monkeypatch.setenv(key, value)
    return smtp_server


def test_to_cc_and_bcc_all_receive_it_and_bcc_stays_out_of_the_headers(smtp_env, tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    report.write_text("a,b\n1,2\n")
    send_email(smtp_settings(load_config()), "a@x.org, b@x.org", "weekly", "<b>hi</b>", cc=["c@x.org"],
               bcc="d@x.org", files=[str(report)])
    [mail] = smtp_env.received()
    assert mail.recipients == ["a@x.org", "b@x.org", "c@x.org", "d@x.org"]
    assert (mail.message["To"], mail.message["Cc"], mail.message["Bcc"]) == ("a@x.org, b@x.org", "c@x.org", None)
    assert mail.mail_from == "nbflow@test.example" and mail.subject == "weekly" and mail.html() == "<b>hi</b>"
    assert mail.attachments() == {"report.csv": b"a,b\n1,2\n"}


def test_a_refused_connection_is_one_line_naming_host_port_and_cause(nbflow_env, monkeypatch) -> None:
    port = free_port()
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_PORT", str(port))
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_RETRY_LIMIT", "2")
    with pytest.raises(EmailDeliveryError) as caught:
        send_email(smtp_settings(load_config()), "a@x.org", "s", "b")
    assert str(caught.value) == f"could not send e-mail through 127.0.0.1:{port} (connection refused)"


def test_a_wrong_password_is_an_authentication_error_that_never_shows_the_password(nbflow_env, smtp_auth_server,
                                                                                   monkeypatch) -> None:
    for key, value in smtp_auth_server.settings_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_USER", "nbflow")
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_PASSWORD", "wrong-s3cret")
    with pytest.raises(EmailDeliveryError) as caught:
        send_email(smtp_settings(load_config()), "a@x.org", "s", "b")
    message = str(caught.value)
    assert message.startswith(f"could not send e-mail through 127.0.0.1:{smtp_auth_server.port} "
                              f"(authentication failed for user 'nbflow': 535")
    assert "wrong-s3cret" not in message and "\n" not in message
    assert smtp_auth_server.received() == []


def test_the_smtp_default_connection_wins_over_the_smtp_section(nbflow_env, smtp_auth_server, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_PORT", str(free_port()))  # nothing listens there
    monkeypatch.setenv("NBFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_auth_server.port, "login": "nbflow",
        "password": "right-password", "extra": {"starttls": False, "from_email": "alerts@x.org"}}))
    send_email(smtp_settings(load_config()), "a@x.org", "via the connection", "b")
    [mail] = smtp_auth_server.received()
    assert mail.subject == "via the connection" and mail.mail_from == "alerts@x.org"


def test_starttls_against_a_server_without_it_says_how_to_fix_it(smtp_env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__SMTP__SMTP_STARTTLS", "true")
    with pytest.raises(EmailDeliveryError, match=r"does not offer STARTTLS; set \[smtp\] smtp_starttls = false"):
        send_email(smtp_settings(load_config()), "a@x.org", "s", "b")


def test_a_server_that_never_answers_ends_after_smtp_timeout_naming_it(nbflow_env, monkeypatch) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never sends a greeting
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        monkeypatch.setenv("NBFLOW__SMTP__SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("NBFLOW__SMTP__SMTP_PORT", str(port))
        monkeypatch.setenv("NBFLOW__SMTP__SMTP_TIMEOUT", "0.3")
        monkeypatch.setenv("NBFLOW__SMTP__SMTP_RETRY_LIMIT", "2")
        with pytest.raises(EmailDeliveryError) as caught:
            send_email(smtp_settings(load_config()), "a@x.org", "s", "b")
    assert str(caught.value) == (f"could not send e-mail through 127.0.0.1:{port} "
                                 f"(no answer within 0.3 s, [smtp] smtp_timeout)")


def test_the_airflow_path_send_email_uses_the_configured_server(smtp_env) -> None:
    from nbflow.utils.email import send_email as airflow_send_email

    assert airflow_send_email("a@x.org", "compat", "<p>ok</p>", bcc="b@x.org") == ["a@x.org", "b@x.org"]
    assert [mail.subject for mail in smtp_env.received()] == ["compat"]


def test_a_missing_attachment_is_named_and_nothing_is_sent(smtp_env, tmp_path: Path) -> None:
    with pytest.raises(NbflowException, match=r"e-mail attachment .*nope.csv does not exist"):
        send_email(smtp_settings(load_config()), "a@x.org", "s", "b", files=[str(tmp_path / "nope.csv")])
    assert smtp_env.received() == []
