"""`nbflow variables set|get|list|delete|import|export` on a real SQLite file; sensitive keys print ***."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.cli.conftest import Cli, raw_rows

TOKEN = "tk-998877665544"


@pytest.fixture
def cli(initialised: Cli) -> Cli:
    return initialised


def test_set_stores_the_value_encrypted_and_get_prints_it(cli: Cli) -> None:
    done = cli("variables", "set", "greeting", "hello world", "--description", "how we greet")
    assert done.code == 0 and done.out == "" and "set variable 'greeting'" in done.err
    [(val, is_encrypted, description)] = raw_rows(
        cli.env.home, "SELECT val, is_encrypted, description FROM variable WHERE key = 'greeting'")
    assert "hello" not in val and is_encrypted and description == "how we greet"
    key = (cli.env.home / "fernet.key").read_text().strip()
    assert Fernet(key.encode()).decrypt(val.encode()).decode() == "hello world"
    got = cli("variables", "get", "greeting")
    assert got.code == 0 and got.out == "hello world\n"
    assert cli("variables", "set", "greeting", "hi").code == 0  # replaces, keeps the description
    assert cli("variables", "list", "-o", "json").json() == [
        {"key": "greeting", "value": "hi", "description": "how we greet"}]


def test_a_sensitive_variable_prints_masked_unless_show_secrets(cli: Cli) -> None:
    assert cli("variables", "set", "api_token", TOKEN).code == 0
    assert cli("variables", "get", "api_token").out == "***\n"
    assert cli("variables", "get", "api_token", "--show-secrets").out == f"{TOKEN}\n"
    table = cli("variables", "list")
    assert TOKEN not in table.out and "api_token  ***" in table.out
    rows = cli("variables", "list", "-o", "json", "--show-secrets").json()
    assert rows == [{"key": "api_token", "value": TOKEN, "description": None}]


def test_sensitive_words_are_configurable(cli: Cli) -> None:
    assert cli("variables", "set", "pin_code", "4711-0815").code == 0
    assert cli("variables", "get", "pin_code").out == "4711-0815\n"
    more = {"NBFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "pin"}
    assert cli("variables", "get", "pin_code", extra_env=more).out == "***\n"


def test_json_values_round_trip_and_their_sensitive_fields_are_masked(cli: Cli) -> None:
    value = '{"db": {"host": "pg", "password": "nested-pa55"}, "days": [1, 2]}'
    assert cli("variables", "set", "settings", value, "--json").code == 0
    parsed = json.loads(cli("variables", "get", "settings", "--json").out)
    assert parsed == {"db": {"host": "pg", "password": "***"}, "days": [1, 2]}
    assert json.loads(cli("variables", "get", "settings", "--json", "--show-secrets").out)["db"]["password"] == \
        "nested-pa55"
    plain = cli("variables", "get", "settings")
    assert "nested-pa55" not in plain.out and json.loads(plain.out)["db"]["password"] == "***"
    listed = cli("variables", "list")
    assert "nested-pa55" not in listed.out and '"password": "***"' in listed.out


def test_bad_json_says_where_it_broke(cli: Cli) -> None:
    done = cli("variables", "set", "settings", '{"day": 3', "--json")
    assert done.code == 1 and done.error_line.startswith(
        "error: VALUE is not valid JSON (line 1, column 10: expecting ',')")
    assert cli("variables", "set", "word", "hello").code == 0
    done = cli("variables", "get", "word", "--json")
    assert done.code == 1 and done.out == ""
    assert done.error_line == ("error: variable 'word' is not valid JSON (line 1, column 1: expecting value); "
                               "read it without --json")


def test_a_missing_variable_names_the_backends_searched_unless_a_default_is_given(cli: Cli) -> None:
    done = cli("variables", "get", "nope")
    assert done.code == 1 and done.out == ""
    assert done.error_line.startswith("error: variable 'nope' does not exist; searched env, metastore;")
    fallback = cli("variables", "get", "nope", "--default", "plan-b")
    assert fallback.code == 0 and fallback.out == "plan-b\n"


def test_an_environment_variable_is_visible_to_get_but_not_stored(cli: Cli) -> None:
    env = {"NBFLOW_VAR_REGION": "eu-west-1", "NBFLOW_VAR_DB_PASSWORD": "env-pa55word"}
    assert cli("variables", "get", "region", extra_env=env).out == "eu-west-1\n"
    assert cli("variables", "get", "db_password", extra_env=env).out == "***\n"
    assert cli("variables", "get", "db_password", "--show-secrets", extra_env=env).out == "env-pa55word\n"
    assert cli("variables", "list", "-o", "json", extra_env=env).json() == []
    gone = cli("variables", "delete", "region", extra_env=env)
    assert gone.code == 1 and "comes from another secrets backend (e.g. NBFLOW_VAR_REGION)" in gone.error_line


def test_delete_removes_a_variable_and_a_second_delete_fails(cli: Cli) -> None:
    assert cli("variables", "set", "greeting", "hello").code == 0
    done = cli("variables", "delete", "greeting")
    assert done.code == 0 and "deleted variable 'greeting'" in done.err
    assert raw_rows(cli.env.home, "SELECT key FROM variable") == []
    again = cli("variables", "delete", "greeting")
    assert again.code == 1 and again.error_line == "error: variable 'greeting' is not stored in the metadata database"


def test_list_when_nothing_is_stored(cli: Cli) -> None:
    done = cli("variables", "list")
    assert done.code == 0 and done.out == "" and "no variables stored in the metadata database" in done.err


def test_a_value_no_configured_key_decrypts_is_a_clear_error(cli: Cli) -> None:
    assert cli("variables", "set", "greeting", "hello").code == 0
    done = cli("variables", "get", "greeting", extra_env={"NBFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()})
    assert done.code == 1 and done.out == "" and "Traceback" not in done.err
    assert done.error_line.startswith("error: variable 'greeting': the stored value cannot be decrypted with any key "
                                      "in core.fernet_key;")


# -- import and export ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vars.json", "vars.yaml", "vars.env"])
def test_export_to_a_file_then_import_restores_every_variable(cli: Cli, name: str) -> None:
    assert cli("variables", "set", "api_token", TOKEN).code == 0
    assert cli("variables", "set", "greeting", "hello").code == 0
    assert cli("variables", "set", "settings", '{"days": [1, 2]}', "--json").code == 0
    before = {row["key"]: row["value"] for row in cli("variables", "list", "-o", "json", "--show-secrets").json()}
    path = cli.env.home.parent / name
    done = cli("variables", "export", str(path))
    assert done.code == 0 and done.out == "", done.err
    assert f"exported 3 variable(s) to {path}; warning:" in done.err
    assert TOKEN in path.read_text() and stat.S_IMODE(path.stat().st_mode) == 0o600
    for key in before:
        assert cli("variables", "delete", key).code == 0
    done = cli("variables", "import", str(path))
    assert done.code == 0 and f"imported 3 variable(s) from {path}" in done.err
    after = {row["key"]: row["value"] for row in cli("variables", "list", "-o", "json", "--show-secrets").json()}
    assert after.keys() == before.keys()
    assert json.loads(after.pop("settings")) == json.loads(before.pop("settings"))  # the JSON, maybe re-indented
    assert after == before


def test_export_to_stdout_hides_sensitive_values_unless_show_secrets(cli: Cli) -> None:
    assert cli("variables", "set", "api_token", TOKEN).code == 0
    assert cli("variables", "set", "greeting", "hello").code == 0
    done = cli("variables", "export", "-")
    assert done.code == 0 and json.loads(done.out) == {"api_token": "***", "greeting": "hello"}
    env = cli("variables", "export", "-", "--format", "env")
    assert env.out.splitlines() == ["api_token=***", "greeting=hello"]
    shown = cli("variables", "export", "-", "--format", "yaml", "--show-secrets")
    assert f"api_token: {TOKEN}" in shown.out


def test_the_env_format_refuses_a_value_that_spans_lines(cli: Cli) -> None:
    assert cli("variables", "set", "poem", "roses\nviolets").code == 0
    done = cli("variables", "export", "-", "--format", "env")
    assert done.code == 1 and done.out == ""
    assert done.error_line == ("error: the env format holds one line per variable, but 'poem' span(s) several lines; "
                               "export to a .json or .yaml file instead")


def test_import_overwrites_by_default_and_can_skip_or_fail_on_existing_keys(cli: Cli) -> None:
    assert cli("variables", "set", "greeting", "hello").code == 0
    path = cli.env.home.parent / "vars.json"
    path.write_text(json.dumps({"greeting": "bonjour", "limit": 10}))

    def values() -> dict[str, str]:
        return {row["key"]: row["value"] for row in cli("variables", "list", "-o", "json").json()}

    refused = cli("variables", "import", str(path), "--action-on-existing-key", "fail")
    assert refused.code == 1 and refused.error_line == (
        f"error: {path}: 1 variable(s) already exist (greeting); nothing was imported; pass "
        f"--action-on-existing-key overwrite or skip")
    assert values() == {"greeting": "hello"}
    skipped = cli("variables", "import", str(path), "-a", "skip")
    assert skipped.code == 0 and "imported 1 variable(s)" in skipped.err and "skipped 1" in skipped.err
    assert values() == {"greeting": "hello", "limit": "10"}
    assert cli("variables", "import", str(path)).code == 0
    assert values() == {"greeting": "bonjour", "limit": "10"}


def test_import_errors_name_the_file(cli: Cli) -> None:
    missing = cli.env.home.parent / "missing.yaml"
    done = cli("variables", "import", str(missing))
    assert done.code == 1 and done.error_line == f"error: cannot read {missing}: No such file or directory"
    bad = cli.env.home.parent / "bad.json"
    bad.write_text('{"a": 1,}')
    done = cli("variables", "import", str(bad))
    assert done.code == 1 and done.error_line.startswith(f"error: {bad}: not valid JSON (")
    bad_env = cli.env.home.parent / "bad.env"
    bad_env.write_text("a=1\njust words\n")
    done = cli("variables", "import", str(bad_env))
    assert done.code == 1 and done.error_line == f"error: {bad_env}, line 2: expected ID=VALUE, got 'just words'"
    assert cli("variables", "list", "-o", "json").json() == []


# -- inside a task -------------------------------------------------------------------------------------

def test_an_unavailable_backend_warning_reaches_the_attempt_log(nbflow: Cli) -> None:
    # No `db init`: the metastore has no tables, so the chain warns and falls through to the default.
    from tests.conftest import write_dag

    write_dag(nbflow.env.dags, "reads_var.py", """
        from datetime import datetime
        from nbflow import DAG
        from nbflow.models import Variable
        from nbflow.operators.python import PythonOperator

        with DAG("reads_var", start_date=datetime(2025, 1, 1), schedule=None):
            PythonOperator(task_id="read", python_callable=lambda: print("got", Variable.get("region", "fallback")))
    """)
    done = nbflow("tasks", "test", "reads_var", "read")
    assert done.code == 0, done.err
    log_path = Path(done.err.strip().splitlines()[-1].rsplit("log: ", 1)[1])
    log = log_path.read_text()
    assert "got fallback" in log
    # Formatted by the attempt's log handler (Python's last-resort handler would print the bare message).
    assert log.count("WARNING - secrets backend 'metastore' is unavailable, skipping it for variable 'region'") == 1
