"""Variable.get/set/delete through the default chain (env, then the metastore on a real SQLite file)."""
from __future__ import annotations

import pytest

from nbflow.configuration import load_config
from nbflow.exceptions import InvalidSecretError, VariableNotFound
from nbflow.secrets.variable import Variable
from nbflow.store.migrate import init_db
from nbflow.utils.masking import masker


@pytest.fixture
def metastore(nbflow_env):  # type: ignore[no-untyped-def]
    init_db(load_config().sql_alchemy_conn)
    return nbflow_env


def test_set_then_get(metastore) -> None:  # type: ignore[no-untyped-def]
    Variable.set("region", "eu-west-1", description="where we run")
    assert Variable.get("region") == "eu-west-1"


def test_json_round_trip(metastore) -> None:  # type: ignore[no-untyped-def]
    Variable.set("limits", {"rows": 100, "tables": ["a", "b"]}, serialize_json=True)
    assert Variable.get("limits", deserialize_json=True) == {"rows": 100, "tables": ["a", "b"]}
    assert '"rows": 100' in Variable.get("limits")


def test_missing_key_raises_key_error_naming_the_backends(metastore) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError) as info:
        Variable.get("nope")
    assert isinstance(info.value, VariableNotFound)
    assert "searched env, metastore" in str(info.value)


def test_default_var_is_returned_as_given(metastore) -> None:  # type: ignore[no-untyped-def]
    assert Variable.get("nope", default_var=None) is None
    assert Variable.get("nope", default_var={"a": 1}, deserialize_json=True) == {"a": 1}


def test_delete(metastore) -> None:  # type: ignore[no-untyped-def]
    Variable.set("temp", "1")
    assert Variable.delete("temp") == 1
    assert Variable.delete("temp") == 0
    assert Variable.get("temp", default_var="gone") == "gone"


def test_environment_wins_over_the_metastore_and_a_write_says_so(metastore, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NBFLOW_VAR_MODE", "from-env")
    Variable.set("mode", "from-db")
    assert Variable.get("mode") == "from-env"
    assert "also defined in secrets backend 'env'" in caplog.text


def test_setdefault_stores_only_when_absent(metastore) -> None:  # type: ignore[no-untyped-def]
    assert Variable.setdefault("k", "first") == "first"
    assert Variable.setdefault("k", "second") == "first"


def test_sensitive_json_fields_are_masked(metastore) -> None:  # type: ignore[no-untyped-def]
    Variable.set("service", {"user": "bot", "password": "nested-pw-777"}, serialize_json=True)
    Variable.get("service", deserialize_json=True)
    assert masker.redact("pw nested-pw-777 user bot") == "pw *** user bot"


def test_non_json_value_read_as_json_is_a_clear_error(metastore) -> None:  # type: ignore[no-untyped-def]
    Variable.set("plain", "not json")
    with pytest.raises(InvalidSecretError, match="variable 'plain' is not valid JSON"):
        Variable.get("plain", deserialize_json=True)
