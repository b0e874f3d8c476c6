"""Real services the suite talks to, and what a test does when one is absent.

A test that needs Postgres, Redis, a Vault dev server, SMTP or a browser uses the real thing.
When it is missing the test skips and says why; under `NBFLOW_REQUIRE_SERVICES=1` (set by
`.ci/run`) it fails instead, so CI cannot pass by skipping.
"""
from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"  # trust auth, see .ci/run
REDIS_URL = "redis://127.0.0.1:6379/0"


def services_required() -> bool:
    """True when a missing service must fail the test rather than skip it."""
    return os.environ.get("NBFLOW_REQUIRE_SERVICES", "") == "1"


def require_service(name: str, reason: str) -> NoReturn:
    """End the current test because service `name` is unavailable: skip, or fail under CI."""
    message = f"{name}: {reason}"
    if services_required():
        pytest.fail(f"{message} (NBFLOW_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the local Postgres test database (started by `.ci/run`)."""
    if not reachable("127.0.0.1", 5432):
        require_service("postgres", "nothing listens on 127.0.0.1:5432; run .ci/run or start Postgres")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the local Redis broker (started by `.ci/run`)."""
    if not reachable("127.0.0.1", 6379):
        require_service("redis", "nothing listens on 127.0.0.1:6379; run .ci/run or start redis-server")
    return REDIS_URL


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free loopback port, for this test only."""
    try:
        from tests.smtp import SmtpServer
        server = SmtpServer().start()
    except ImportError as err:
        require_service("smtp", f"aiosmtpd is not installed ({err}); run `make venv`")
    yield server
    server.stop()


@pytest.fixture
def smtp_auth_server():
    """A real SMTP server that requires AUTH as user `nbflow` with password `right-password`."""
    try:
        from tests.smtp import SmtpServer
        server = SmtpServer(user="nbflow", password="right-password").start()
    except ImportError as err:
        require_service("smtp", f"aiosmtpd is not installed ({err}); run `make venv`")
    yield server
    server.stop()
