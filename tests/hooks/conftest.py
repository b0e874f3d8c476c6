"""Fixtures for the hooks tests: a fresh default secrets chain per test, the Vault dev server."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from nbflow.secrets.chain import reset_default_chain
from tests.secrets.vault_server import vault  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def _fresh_default_chain() -> Iterator[None]:
    reset_default_chain()
    yield
    reset_default_chain()
