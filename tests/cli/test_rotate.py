"""`nbflow rotate-fernet-key` and the Fernet key `db init` generates, on a real SQLite file."""
from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from cryptography.fernet import Fernet

from tests.cli.conftest import Cli

PASSWORD = "s3cr3t-pa55word"
TOKEN = "tk-998877665544"


def ciphertexts(home: Path) -> list[str]:
    """Every encrypted value in the database file: connection passwords and extras, variable values."""
    with sqlite3.connect(home / "nbflow.db") as db:
        rows = db.execute("SELECT password, extra FROM connection ORDER BY conn_id").fetchall()
        rows += db.execute("SELECT val, NULL FROM variable ORDER BY key").fetchall()
    return [value for row in rows for value in row if value is not None]


def test_db_init_generates_a_private_fernet_key_once(nbflow: Cli) -> None:
    done = nbflow("db", "init")
    assert done.code == 0, done.err
    path = nbflow.env.home / "fernet.key"
    assert f"generated a Fernet key in {path}; back it up" in done.err
    key = path.read_text().strip()
    Fernet(key.encode())  # a valid key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = nbflow("db", "upgrade")
    assert again.code == 0 and "generated a Fernet key" not in again.err
    assert path.read_text().strip() == key
    assert nbflow("db", "reset", "--yes").code == 0 and path.read_text().strip() == key


def test_db_init_writes_no_key_file_when_fernet_key_is_configured(nbflow: Cli) -> None:
    done = nbflow("db", "init", extra_env={"NBFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()})
    assert done.code == 0, done.err
    assert not (nbflow.env.home / "fernet.key").exists() and "generated a Fernet key" not in done.err


def test_rotation_re_encrypts_with_the_first_key_so_the_old_one_can_go(nbflow: Cli) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with_old = {"NBFLOW__CORE__FERNET_KEY": old}
    assert nbflow("db", "init", extra_env=with_old).code == 0
    assert nbflow("connections", "add", "wh", "--conn-uri", f"postgres://etl:{PASSWORD}@db/wh?sslmode=require",
                  extra_env=with_old).code == 0
    assert nbflow("variables", "set", "api_token", TOKEN, extra_env=with_old).code == 0
    before = ciphertexts(nbflow.env.home)
    assert len(before) == 3 and all(Fernet(old.encode()).decrypt(value.encode()) for value in before)

    done = nbflow("rotate-fernet-key", "--output", "json", extra_env={"NBFLOW__CORE__FERNET_KEY": f"{new},{old}"})
    assert done.code == 0, done.err
    assert done.json() == [{"connections": 1, "variables": 1, "xcoms": 0}]
    assert "re-encrypted 1 connection(s), 1 variable(s) and 0 XCom(s) with the first Fernet key" in done.err

    after = ciphertexts(nbflow.env.home)
    assert after != before and PASSWORD not in "".join(after) and TOKEN not in "".join(after)
    assert [Fernet(new.encode()).decrypt(value.encode()).decode() for value in after] == [
        PASSWORD, '{"sslmode": "require"}', TOKEN]
    with_new = {"NBFLOW__CORE__FERNET_KEY": new}
    conn = nbflow("connections", "get", "wh", "-o", "json", "--show-secrets", extra_env=with_new)
    assert conn.code == 0 and conn.json()["password"] == PASSWORD
    assert nbflow("variables", "get", "api_token", "--show-secrets", extra_env=with_new).out == f"{TOKEN}\n"
    stale = nbflow("variables", "get", "api_token", extra_env=with_old)
    assert stale.code == 1 and "cannot be decrypted with any key in core.fernet_key" in stale.error_line


def test_rotation_stops_on_a_value_no_key_decrypts_and_changes_nothing(nbflow: Cli) -> None:
    first = {"NBFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()}
    assert nbflow("db", "init", extra_env=first).code == 0
    assert nbflow("variables", "set", "a_readable", "one", extra_env=first).code == 0
    other = {"NBFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()}
    assert nbflow("variables", "set", "b_lost", "two", extra_env=other).code == 0
    before = ciphertexts(nbflow.env.home)
    done = nbflow("rotate-fernet-key", extra_env=first)
    assert done.code == 1 and done.out == ""
    assert done.error_line.startswith("error: variable 'b_lost': the stored value cannot be decrypted with any key "
                                      "in core.fernet_key;")
    assert ciphertexts(nbflow.env.home) == before  # a_readable was re-encrypted, then rolled back


def test_rotation_with_the_generated_key_alone_keeps_values_readable(nbflow: Cli) -> None:
    assert nbflow("db", "init").code == 0
    assert nbflow("variables", "set", "greeting", "hello").code == 0
    before = ciphertexts(nbflow.env.home)
    done = nbflow("rotate-fernet-key")
    assert done.code == 0, done.err
    assert done.out.splitlines()[2].split() == ["0", "1", "0"]
    assert "holds only this key" in done.err
    assert ciphertexts(nbflow.env.home) != before  # a fresh token (new IV), same key
    assert nbflow("variables", "get", "greeting").out == "hello\n"


def test_rotation_before_db_init_says_to_run_it(nbflow: Cli) -> None:
    done = nbflow("rotate-fernet-key")
    assert done.code == 1
    assert done.error_line.startswith("error: cannot rotate the Fernet key in sqlite:///")
    assert done.error_line.endswith("no such table: connection; run `nbflow db init` first")


def test_a_malformed_key_is_a_one_line_error(nbflow: Cli) -> None:
    done = nbflow("rotate-fernet-key", extra_env={"NBFLOW__CORE__FERNET_KEY": f"{Fernet.generate_key().decode()},oops"})
    assert done.code == 1
    assert done.error_line.startswith("error: core.fernet_key: key 2 of 2 is not a Fernet key")
