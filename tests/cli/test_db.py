"""`nbflow db init|upgrade|reset|check` on a real SQLite file under NBFLOW_HOME."""
from __future__ import annotations

from tests.cli.conftest import Cli


def test_check_before_init_fails_and_init_creates_the_database(nbflow: Cli) -> None:
    before = nbflow("db", "check")
    assert before.code == 1 and "`nbflow db init` creates it" in before.error_line
    done = nbflow("db", "init")
    assert done.code == 0, done.err
    assert (nbflow.env.home / "nbflow.db").exists()
    [status] = nbflow("db", "check", "--output", "json").json()
    assert status["reachable"] and status["at_head"] and status["current_revision"] == status["head_revision"]


def test_upgrade_is_idempotent_and_reset_asks_for_confirmation(nbflow: Cli) -> None:
    assert nbflow("db", "upgrade").code == 0
    assert nbflow("db", "upgrade").code == 0
    refused = nbflow("db", "reset")
    assert refused.code == 1 and refused.error_line.endswith("add --yes to confirm")
    assert nbflow("db", "reset", "--yes").code == 0
