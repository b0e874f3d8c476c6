"""The backends chain: order, misses, unavailable backends, the cache, masking, building from config."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nbflow.configuration import load_config
from nbflow.exceptions import (
    ConnectionNotFound,
    NbflowConfigException,
    SecretsBackendUnavailable,
    UndecryptableSecretError,
    UnknownPluginError,
    VariableNotFound,
)
from nbflow.secrets.backends.base import BaseSecretsBackend
from nbflow.secrets.chain import SecretsChain, get_connection, get_variable
from nbflow.secrets.connection import Connection
from nbflow.utils.masking import masker

REPO = Path(__file__).resolve().parents[2]


class DictBackend(BaseSecretsBackend):
    """Holds connections and variables in dicts; counts lookups; can be switched off.

    It holds ordinary values as env and the metastore do, so only what is sensitively named is masked."""

    masks_returned_values = False

    def __init__(self, name: str, conns: dict[str, str] | None = None, variables: dict[str, str] | None = None,
                 *, cacheable: bool = True) -> None:
        self.name = name  # type: ignore[misc]
        self.cacheable = cacheable  # type: ignore[misc]
        self.conns, self.variables = dict(conns or {}), dict(variables or {})
        self.down = False
        self.lookups = 0

    def _check(self) -> None:
        self.lookups += 1
        if self.down:
            raise SecretsBackendUnavailable(self.name, "connection refused")

    def get_conn_value(self, conn_id: str) -> str | None:
        self._check()
        return self.conns.get(conn_id)

    def get_variable(self, key: str) -> str | None:
        self._check()
        return self.variables.get(key)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_backend_holding_an_id_answers() -> None:
    first = DictBackend("first", {"db": "postgres://a@one/x"}, {"v": "1"})
    second = DictBackend("second", {"db": "postgres://a@two/x", "other": "http://h"}, {"v": "2", "w": "3"})
    chain = SecretsChain([first, second])
    assert chain.get_connection("db").host == "one"
    assert chain.get_connection("other").host == "h"
    assert (chain.get_variable("v"), chain.get_variable("w")) == ("1", "3")


def test_a_missing_connection_lists_the_backends_searched() -> None:
    chain = SecretsChain([DictBackend("first"), DictBackend("second")])
    with pytest.raises(ConnectionNotFound) as info:
        chain.get_connection("nope")
    assert isinstance(info.value, KeyError)
    assert "connection 'nope' is not defined; searched first, second" in str(info.value)
    assert info.value.backends == ["first", "second"]


def test_a_missing_variable_is_a_key_error_unless_a_default_is_given() -> None:
    chain = SecretsChain([DictBackend("only")])
    with pytest.raises(KeyError, match="variable 'nope' does not exist; searched only"):
        chain.get_variable("nope")
    with pytest.raises(VariableNotFound):
        chain.get_variable("nope")
    assert chain.get_variable("nope", None) is None
    assert chain.get_variable("nope", "fallback") == "fallback"


def test_an_unavailable_backend_logs_one_warning_and_the_chain_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    broken = DictBackend("broken", {"db": "postgres://a@broken/x"})
    broken.down = True
    chain = SecretsChain([broken, DictBackend("spare", {"db": "postgres://a@spare/x"})])
    with caplog.at_level(logging.WARNING, logger="nbflow.secrets"):
        assert chain.get_connection("db").host == "spare"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "nbflow.secrets"]
    assert len(warnings) == 1
    assert "'broken' is unavailable" in warnings[0].getMessage() and "spare" in warnings[0].getMessage()


def test_fail_closed_turns_an_unavailable_backend_into_an_error() -> None:
    broken = DictBackend("broken")
    broken.down = True
    chain = SecretsChain([broken, DictBackend("spare", variables={"v": "1"})], fail_closed=True)
    with pytest.raises(SecretsBackendUnavailable, match=r"'broken' is unavailable.*variable 'v'.*fail_closed"):
        chain.get_variable("v")


def test_an_unexpected_error_in_a_custom_backend_counts_as_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    class Exploding(BaseSecretsBackend):
        name = "exploding"

        def get_variable(self, key: str) -> str | None:
            raise RuntimeError("boom")

    chain = SecretsChain([Exploding(), DictBackend("spare", variables={"v": "1"})])
    with caplog.at_level(logging.WARNING, logger="nbflow.secrets"):
        assert chain.get_variable("v") == "1"
    assert "RuntimeError: boom" in caplog.text


def test_an_undecryptable_value_is_never_skipped() -> None:
    class Undecryptable(BaseSecretsBackend):
        def get_variable(self, key: str) -> str | None:
            raise UndecryptableSecretError(f"variable {key!r}", "value")

    chain = SecretsChain([Undecryptable(), DictBackend("spare", variables={"v": "1"})])
    with pytest.raises(UndecryptableSecretError):
        chain.get_variable("v")


def test_cached_answers_are_kept_until_the_ttl_passes() -> None:
    clock = FakeClock()
    backend = DictBackend("remote", variables={"v": "old"})
    chain = SecretsChain([backend], cache_ttl=60, clock=clock)
    assert chain.get_variable("v") == "old"
    backend.variables["v"] = "new"
    clock.now += 59
    assert chain.get_variable("v") == "old"
    assert backend.lookups == 1
    clock.now += 2
    assert chain.get_variable("v") == "new"


def test_backends_that_are_not_cacheable_are_asked_each_time() -> None:
    backend = DictBackend("local", variables={"v": "old"}, cacheable=False)
    chain = SecretsChain([backend], cache_ttl=60)
    chain.get_variable("v")
    backend.variables["v"] = "new"
    assert chain.get_variable("v") == "new"


def test_misses_are_not_cached() -> None:
    backend = DictBackend("remote")
    chain = SecretsChain([backend], cache_ttl=60)
    assert chain.get_variable("v", None) is None
    backend.variables["v"] = "now here"
    assert chain.get_variable("v") == "now here"


def test_a_fetched_connection_password_and_sensitive_extras_are_masked() -> None:
    chain = SecretsChain([DictBackend("b", {"db": 'postgres://etl:Chain-Pw%2F42@db/wh?__extra__='
                                               '%7B%22api_token%22%3A+%22tok-98765%22%7D'})])
    conn = chain.get_connection("db")
    assert conn.password == "Chain-Pw/42"
    line = "connecting with Chain-Pw/42 (encoded Chain-Pw%2F42), token tok-98765"
    assert masker.redact(line) == "connecting with *** (encoded ***), token ***"


class StoreBackend(DictBackend):
    """A secrets store (as Vault, or a user's own backend is): everything it returns is a secret."""

    masks_returned_values = True


def test_of_a_backend_holding_ordinary_values_only_sensitive_variables_are_masked() -> None:
    chain = SecretsChain([DictBackend("b", variables={"db_password": "var-secret-1", "region": "eu-central-9"})])
    chain.get_variable("db_password")
    chain.get_variable("region")
    assert masker.redact("var-secret-1 eu-central-9") == "*** eu-central-9"


def test_every_variable_a_secrets_store_returns_is_masked_whatever_its_name() -> None:
    chain = SecretsChain([StoreBackend("store", variables={"region": "eu-north-77",
                                                           "limits": '{"zone": "zone-a-81", "rows": 1000}'})])
    chain.get_variable("region")
    chain.get_variable("limits")
    assert masker.redact("region eu-north-77") == "region ***"
    assert masker.redact("{'zone': 'zone-a-81', 'rows': 1000}") == "{'zone': '***', 'rows': 1000}"


def test_a_connection_from_a_secrets_store_is_masked_with_its_whole_uri() -> None:
    chain = SecretsChain([StoreBackend("store", {"wh": "postgres://etl:Store-Pw-31@store-db:5432/wh"})])
    conn = chain.get_connection("wh")
    assert masker.redact(f"{conn.get_uri()} then {conn.password}") == "*** then ***"


def test_a_backend_that_does_not_say_what_it_holds_is_masked_entirely() -> None:
    class Plain:  # duck-typed: not a BaseSecretsBackend subclass
        def get_connection(self, conn_id: str) -> None:
            return None

        def get_variable(self, key: str) -> str | None:
            return "plain-value-52" if key == "colour" else None

    SecretsChain([Plain()]).get_variable("colour")
    assert masker.redact("plain-value-52") == "***"


def test_short_values_are_never_masked_even_from_a_secrets_store() -> None:
    SecretsChain([StoreBackend("store", variables={"flag": "on"})]).get_variable("flag")
    assert masker.redact("turn it on") == "turn it on"  # under the masker's 4-character minimum


def test_configured_sensitive_words_extend_the_defaults(nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NBFLOW__CORE__SENSITIVE_VAR_CONN_NAMES", "pin,cvv")
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env")
    monkeypatch.setenv("NBFLOW_VAR_CARD_PIN", "pin-4711-x")
    try:
        SecretsChain.from_config(load_config()).get_variable("card_pin")
        assert masker.redact("pin-4711-x") == "***"
    finally:
        masker.set_sensitive_words([])


def test_writes_go_to_the_first_writable_backend_and_say_so_when_there_is_none() -> None:
    from nbflow.exceptions import SecretsError

    with pytest.raises(SecretsError, match="none of the secrets backends \\(only\\) stores values.*metastore"):
        SecretsChain([DictBackend("only")]).set_variable("k", "v")


# -- built from configuration ------------------------------------------------------------------

def test_default_backends_are_env_then_metastore(nbflow_env) -> None:  # type: ignore[no-untyped-def]
    chain = SecretsChain.from_config(load_config())
    assert chain.names == ["env", "metastore"]
    assert not chain.fail_closed and chain.cache.ttl == 300


def test_backends_are_read_comma_separated_from_the_environment(nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", " metastore , env ")
    monkeypatch.setenv("NBFLOW__SECRETS__CACHE_TTL_SECONDS", "0.5")
    monkeypatch.setenv("NBFLOW__SECRETS__FAIL_CLOSED", "true")
    chain = SecretsChain.from_config(load_config())
    assert chain.names == ["metastore", "env"]
    assert chain.cache.ttl == 0.5 and chain.fail_closed


def test_an_unknown_backend_name_lists_the_known_ones(nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env,vualt")
    with pytest.raises(UnknownPluginError, match=r"unknown secrets backend 'vualt'.*known: .*env.*metastore.*vault"):
        SecretsChain.from_config(load_config())


def test_a_bad_class_path_is_a_config_error(nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "json:NoSuchBackend")
    with pytest.raises(NbflowConfigException, match="module 'json' has no class 'NoSuchBackend'"):
        SecretsChain.from_config(load_config())
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "no_such_module_xyz.Backend")
    with pytest.raises(NbflowConfigException, match="cannot import 'no_such_module_xyz.Backend'"):
        SecretsChain.from_config(load_config())


def test_a_custom_backend_by_class_path(nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", f"env,{__name__}:ConfiguredBackend")
    chain = SecretsChain.from_config(load_config())
    assert chain.names == ["env", f"{__name__}:ConfiguredBackend"]
    assert chain.get_variable("answer") == "42"


class ConfiguredBackend(BaseSecretsBackend):
    def get_variable(self, key: str) -> str | None:
        return "42" if key == "answer" else None


def test_module_helpers_use_the_default_chain(nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env")
    monkeypatch.setenv("NBFLOW_CONN_WH", "postgres://u:p@h/db")
    monkeypatch.setenv("NBFLOW_VAR_REGION", "eu")
    assert get_connection("wh").host == "h"
    assert Connection.get_connection_from_secrets("wh") == Connection.get("wh")
    assert get_variable("region") == "eu"
    assert get_variable("absent", default="d") == "d"


def test_default_chain_on_an_uninitialised_database_warns_and_uses_the_default(
        nbflow_env, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.WARNING, logger="nbflow.secrets"):
        assert get_variable("absent", default="d") == "d"
    assert "nbflow db init" in caplog.text


def test_importing_nbflow_secrets_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    code = ("import sys, nbflow.secrets, nbflow.secrets.accessors, nbflow.hooks.base; "
            "heavy = [m for m in ('hvac', 'cryptography', 'sqlalchemy', 'requests') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_forked_child_builds_its_own_default_chain(nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from nbflow.secrets import chain as chain_module

    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env")
    parent_chain = chain_module.default_chain()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports whether it still holds the parent's chain
        os.close(read)
        os.write(write, b"inherited" if chain_module._default_chain is parent_chain else b"fresh")
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    assert answer == b"fresh"
    assert chain_module.default_chain() is parent_chain


def test_a_miss_while_a_backend_was_down_says_so() -> None:
    broken = DictBackend("broken")
    broken.down = True
    with pytest.raises(ConnectionNotFound, match=r"searched broken \(unavailable\), spare;"):
        SecretsChain([broken, DictBackend("spare")]).get_connection("db")


def test_the_default_chain_follows_the_environment_from_one_home_to_the_next(  # type: ignore[no-untyped-def]
        nbflow_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One process, two installations one after the other (as in a test run): each reads its own database."""
    from nbflow.models import Variable
    from nbflow.store.migrate import init_db

    def use_home(name: str) -> None:
        home = tmp_path / name
        home.mkdir(exist_ok=True)
        monkeypatch.setenv("NBFLOW_HOME", str(home))
        init_db(f"sqlite:///{home / 'nbflow.db'}")

    use_home("first")
    Variable.set("where", "first")
    use_home("second")
    assert Variable.get("where", default_var="unset") == "unset"
    Variable.set("where", "second")
    use_home("first")
    assert Variable.get("where") == "first"


def test_the_default_chain_is_rebuilt_when_a_setting_changes(nbflow_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from nbflow.secrets import chain as chain_module

    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env")
    first = chain_module.default_chain()
    assert chain_module.default_chain() is first  # unchanged: built once
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env,metastore")
    assert chain_module.default_chain().names != first.names
