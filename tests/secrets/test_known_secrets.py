"""Which secrets the masker knows before a task prints them: the environment, the metastore, what backends return."""
from __future__ import annotations

import io
import logging
import uuid
from urllib.parse import quote

from cryptography.fernet import Fernet

from nbflow.secrets.backends.metastore import MetastoreBackend
from nbflow.secrets.backends.vault import VaultBackend
from nbflow.secrets.chain import SecretsChain
from nbflow.secrets.connection import Connection
from nbflow.secrets.fernet import load_fernet
from nbflow.secrets.known import register_environment_secrets, register_known_secrets
from nbflow.store.engine import make_engine
from nbflow.utils.masking import MaskedFormatter, SecretsMasker, masker
from tests.secrets.vault_server import VaultServer


def known(environ: dict[str, str]) -> SecretsMasker:
    into = SecretsMasker()
    register_environment_secrets(environ, into)
    return into


def test_a_connection_uri_password_is_masked_raw_and_url_encoded() -> None:
    into = known({"NBFLOW_CONN_WH": "postgres://etl:p%40ss%2Fword-1@db:5432/wh"})
    assert into.redact("raw p@ss/word-1, as written p%40ss%2Fword-1") == "raw ***, as written ***"
    assert into.redact("user etl on db") == "user etl on db"


def test_a_password_urlsplit_rejects_is_still_masked() -> None:
    into = known({"NBFLOW_CONN_BAD": "http://bot:pa/ss#word9@api"})
    assert into.redact("pw pa/ss#word9") == "pw ***"


def test_a_json_connection_masks_its_password_and_sensitive_extras() -> None:
    into = known({"NBFLOW_CONN_API": '{"conn_type": "http", "password": "json-pw-77", '
                                     '"extra": {"api_token": "tok-88-99", "timeout": 30}}'})
    assert into.redact("json-pw-77 tok-88-99 30") == "*** *** 30"


def test_only_variables_with_a_sensitive_name_are_masked_from_the_environment() -> None:
    into = known({"NBFLOW_VAR_API_KEY": "k-1234567", "NBFLOW_VAR_DB_PASSWORD": "hunter22",
                  "NBFLOW_VAR_MY_ACCESS_TOKEN": "at-556677", "NBFLOW_VAR_REGION": "eu-west-1",
                  "NBFLOW_VAR_SETTINGS": '{"private_key": "pk-abcdef", "rows": "1000"}', "HOME_TOKEN": "not-ours"})
    assert into.redact("k-1234567 hunter22 at-556677 pk-abcdef") == "*** *** *** ***"
    assert into.redact("eu-west-1 1000 not-ours") == "eu-west-1 1000 not-ours"


def test_every_name_on_airflows_list_is_sensitive() -> None:
    names = ("password", "secret", "passwd", "authorization", "api_key", "apikey", "access_token", "private_key",
             "token")
    environ = {f"NBFLOW_VAR_MY_{name.upper()}_X": f"value-of-{name}" for name in names}
    into = known(environ)
    assert [into.redact(value) for value in environ.values()] == ["***"] * len(names)


def test_metastore_passwords_and_sensitive_variables_are_registered(sqlite_url: str) -> None:
    backend = MetastoreBackend(make_engine(sqlite_url), load_fernet(Fernet.generate_key().decode()))
    backend.set_connection(Connection(conn_id="wh", conn_type="postgres", host="db", password="stored-pw-31"))
    backend.set_variable("slack_token", "xoxb-stored-1")
    backend.set_variable("owner", "data-team")
    into = SecretsMasker()
    register_known_secrets(SecretsChain([backend]), into)
    assert into.redact("stored-pw-31 xoxb-stored-1 data-team") == "*** *** data-team"


def test_a_database_that_is_not_initialised_registers_nothing_and_does_not_fail(tmp_path) -> None:
    backend = MetastoreBackend(make_engine(f"sqlite:///{tmp_path / 'empty.db'}"),
                               load_fernet(Fernet.generate_key().decode()))
    into = SecretsMasker()
    register_known_secrets(SecretsChain([backend]), into)
    assert into.secrets == frozenset()


def test_every_variable_vault_returns_is_masked_when_read(vault: VaultServer) -> None:
    key = f"region_{uuid.uuid4().hex[:8]}"
    vault.put_variable(key, "vault-plain-value-1")
    chain = SecretsChain([VaultBackend(vault.url, auth_type="token", token=vault.reader_token())])
    assert chain.get_variable(key) == "vault-plain-value-1"
    assert masker.redact("got vault-plain-value-1") == "got ***"


def test_the_masked_formatter_masks_messages_arguments_and_tracebacks() -> None:
    masker.add("fmt-secret-42")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskedFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger(f"test.masked.{uuid.uuid4().hex}")
    log.addHandler(handler)
    log.propagate = False
    log.warning("connecting with %s", "fmt-secret-42")
    try:
        raise ValueError(f"refused {quote('fmt-secret-42')}")
    except ValueError:
        log.exception("failed")
    assert "fmt-secret-42" not in stream.getvalue()
    assert "WARNING connecting with ***" in stream.getvalue() and "ValueError: refused ***" in stream.getvalue()


def test_words_added_by_sensitive_var_conn_names_apply_to_environment_variables(monkeypatch) -> None:
    from nbflow.configuration import load_config
    from nbflow.secrets.known import apply_sensitive_words

    monkeypatch.setenv("NBFLOW__CORE__SENSITIVE_VAR_CONN_NAMES", "pin")
    monkeypatch.setenv("NBFLOW_VAR_DOOR_PIN", "pin-code-4711")
    try:
        apply_sensitive_words(load_config())
        register_environment_secrets()
        assert masker.redact("the pin is pin-code-4711") == "the pin is ***"
    finally:
        masker.set_sensitive_words([])
