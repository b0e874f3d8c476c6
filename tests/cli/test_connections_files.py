"""`nbflow connections import|export`: Airflow's JSON, YAML and env files, real values only where asked."""
from __future__ import annotations

import json
import stat

import pytest

from tests.cli.conftest import Cli

PASSWORD = "s3cr3t-pa55word"
URI = f"postgresql://etl:{PASSWORD}@db.example:5432/wh?sslmode=require"


@pytest.fixture
def cli(nbflow: Cli) -> Cli:
    """The CLI against a metadata database holding connections `wh` (URI) and `api` (fields)."""
    assert nbflow("db", "init").code == 0
    assert nbflow("connections", "add", "wh", "--conn-uri", URI, "--conn-description", "warehouse").code == 0
    done = nbflow("connections", "add", "api", "--conn-type", "http", "--conn-host", "example.com", "--conn-password",
                  "api-pa55", "--conn-extra", '{"api_key": "k-123456", "timeout": 5}')
    assert done.code == 0, done.err
    return nbflow


def stored(cli: Cli) -> list[dict]:
    return cli("connections", "list", "-o", "json", "--show-secrets").json()


@pytest.mark.parametrize("name", ["backup.json", "backup.yaml", "backup.env"])
def test_export_to_a_file_then_import_restores_every_connection(cli: Cli, name: str) -> None:
    before = stored(cli)
    path = cli.env.home.parent / name
    done = cli("connections", "export", str(path))
    assert done.code == 0 and done.out == "", done.err
    assert f"exported 2 connection(s) to {path}; warning:" in done.err
    text = path.read_text()
    assert PASSWORD in text and "k-123456" in text  # a backup holds the real values
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for conn_id in ("wh", "api"):
        assert cli("connections", "delete", conn_id).code == 0
    done = cli("connections", "import", str(path))
    assert done.code == 0, done.err
    assert f"imported 2 connection(s) from {path}" in done.err
    after = stored(cli)
    if name.endswith(".env"):  # a URI has no place for the description
        for row in before:
            row["description"] = None
    assert after == before


def test_export_to_stdout_hides_secrets_unless_show_secrets(cli: Cli) -> None:
    done = cli("connections", "export", "-")
    assert done.code == 0, done.err
    data = json.loads(done.out)
    assert data["wh"]["password"] == "***" and data["api"]["extra"] == {"api_key": "***", "timeout": 5}
    assert PASSWORD not in done.out and "k-123456" not in done.out and "api-pa55" not in done.out
    env = cli("connections", "export", "-", "--format", "env")
    assert "wh=postgres://etl:***@db.example:5432/wh?sslmode=require" in env.out.splitlines()
    assert PASSWORD not in env.out
    shown = cli("connections", "export", "-", "--format", "yaml", "--show-secrets")
    assert f"password: {PASSWORD}" in shown.out and "api_key: k-123456" in shown.out


def test_import_skips_existing_connections_unless_overwrite(cli: Cli) -> None:
    path = cli.env.home.parent / "more.json"
    path.write_text(json.dumps({"wh": "postgres://other@elsewhere/db",
                                "new": {"conn_type": "http", "host": "new.example", "password": "new-pa55"}}))
    done = cli("connections", "import", str(path))
    assert done.code == 0, done.err
    assert done.err.strip().endswith(f"imported 1 connection(s) from {path} into the metadata database; skipped 1 "
                                     f"that already exist (wh); --overwrite replaces them")
    hosts = {row["conn_id"]: row["host"] for row in stored(cli)}
    assert hosts == {"api": "example.com", "new": "new.example", "wh": "db.example"}
    done = cli("connections", "import", str(path), "--overwrite")
    assert done.code == 0 and f"imported 2 connection(s) from {path}" in done.err
    assert {row["conn_id"]: row["host"] for row in stored(cli)}["wh"] == "elsewhere"


@pytest.mark.parametrize(("name", "text", "error"), [
    ("bad.env", "good=http://h\n# a comment\nbroken=not-a-uri\n",
     "{path}: connection 'broken': 'not-a-uri' is not a connection URI"),
    ("bad.env", "good=http://h\nno equals sign\n", "{path}, line 2: expected ID=VALUE, got 'no equals sign'"),
    ("bad.json", '{"a": {"conn_type": "http", "hots": "h"}}', "{path}: connection 'a': unknown field(s) hots;"),
    ("bad.json", '{"a": {"conn_type": "http",, }}',
     "{path}: not valid JSON (Expecting property name enclosed in double quotes at line 1, column 28)"),
    ("bad.yaml", "a: [1, 2\n", "{path}: not valid YAML ("),
    ("bad.yaml", "a: 3\n", "{path}: connection 'a' must be a URI string or an object of fields, not int"),
])
def test_a_bad_entry_names_the_file_and_the_entry_and_imports_nothing(cli: Cli, name: str, text: str,
                                                                      error: str) -> None:
    path = cli.env.home.parent / name
    path.write_text(text)
    done = cli("connections", "import", str(path))
    assert done.code == 1 and "Traceback" not in done.err
    assert done.error_line.startswith("error: " + error.format(path=path))
    assert [row["conn_id"] for row in stored(cli)] == ["api", "wh"]  # `good` was not stored either


def test_an_unreadable_file_is_a_one_line_error(cli: Cli) -> None:
    missing = cli.env.home.parent / "missing.json"
    done = cli("connections", "import", str(missing))
    assert done.code == 1 and done.error_line == f"error: cannot read {missing}: No such file or directory"
    folder = cli.env.home.parent / "folder.json"
    folder.mkdir()
    done = cli("connections", "import", str(folder))
    assert done.code == 1 and done.error_line == f"error: cannot read {folder}: Is a directory"
    unknown = cli.env.home.parent / "conns.txt"
    unknown.write_text("wh=http://h\n")
    done = cli("connections", "import", str(unknown))
    assert done.code == 1 and "cannot tell the format from the suffix '.txt'" in done.error_line
    assert cli("connections", "import", str(unknown), "--format", "env", "--overwrite").code == 0


def test_export_to_a_place_that_cannot_be_written_is_a_one_line_error(cli: Cli) -> None:
    target = cli.env.home.parent / "no-such-folder" / "out.json"
    done = cli("connections", "export", str(target))
    assert done.code == 1 and done.error_line == f"error: cannot write {target}: No such file or directory"
