"""The example plugin in extensions/: a JSON-file secrets backend named by class path in config."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nbflow.configuration import load_config
from nbflow.exceptions import ConnectionNotFound
from nbflow.secrets.chain import SecretsChain

EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"


@pytest.fixture
def project(nbflow_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """A project whose plugins folder holds the example backend and whose config names it."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(EXTENSIONS / "example_secrets_backend.py", plugins / "example_secrets_backend.py")
    monkeypatch.setenv("NBFLOW__CORE__PLUGINS_FOLDER", str(plugins))
    (tmp_path / "secrets.json").write_text(json.dumps({
        "connections": {"warehouse": "postgres://etl:Json-File-Pw@db:5432/wh",
                        "api": {"conn_type": "http", "host": "api.example.com", "extra": {"timeout": 3}}},
        "variables": {"region": "eu-west-1", "limits": {"rows": 100}},
        "config": {"smtp_password": "smtp-pw"},
    }))
    monkeypatch.setenv("NBFLOW__JSON_SECRETS__PATH", str(tmp_path / "secrets.json"))
    return tmp_path


@pytest.mark.parametrize("spec", ["example_secrets_backend:JsonFileSecretsBackend",
                                  "example_secrets_backend.JsonFileSecretsBackend"])
def test_the_example_backend_loads_from_the_plugins_folder(project: Path, spec: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", f"env,{spec}")
    monkeypatch.delitem(__import__("sys").modules, "example_secrets_backend", raising=False)
    chain = SecretsChain.from_config(load_config())
    assert chain.names[1] == f"json_file ({project / 'secrets.json'})"
    assert chain.get_connection("warehouse").password == "Json-File-Pw"
    assert chain.get_connection("api").extra_dejson == {"timeout": 3}
    assert chain.get_variable("region") == "eu-west-1"
    assert json.loads(chain.get_variable("limits")) == {"rows": 100}
    assert chain.get_config("smtp_password") == "smtp-pw"
    with pytest.raises(ConnectionNotFound, match="searched env, json_file"):
        chain.get_connection("nope")


def test_once_loaded_it_is_known_by_its_registered_name(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "example_secrets_backend:JsonFileSecretsBackend")
    SecretsChain.from_config(load_config())
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "json_file")
    assert SecretsChain.from_config(load_config()).get_variable("region") == "eu-west-1"


def test_a_missing_file_is_an_unavailable_backend(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "example_secrets_backend:JsonFileSecretsBackend,env")
    monkeypatch.setenv("NBFLOW__JSON_SECRETS__PATH", str(project / "absent.json"))
    monkeypatch.setenv("NBFLOW_VAR_REGION", "from-env")
    assert SecretsChain.from_config(load_config()).get_variable("region") == "from-env"
    assert "the file does not exist" in caplog.text
