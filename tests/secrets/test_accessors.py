"""`var` and `conn` in Jinja templates."""
from __future__ import annotations

import jinja2
import pytest

from nbflow.exceptions import ConnectionNotFound, VariableNotFound
from nbflow.secrets.accessors import ConnectionAccessor, VariableAccessor, VariableNamespace
from nbflow.secrets.backends.env import EnvironmentVariablesBackend
from nbflow.secrets.chain import SecretsChain

ENV = {
    "NBFLOW_VAR_BUCKET": "s3://data",
    "NBFLOW_VAR_SETTINGS": '{"batch": {"size": 500}, "mode": "fast"}',
    "NBFLOW_CONN_WAREHOUSE": "postgres://etl:pw@db.internal:5432/wh",
}


@pytest.fixture
def chain() -> SecretsChain:
    return SecretsChain([EnvironmentVariablesBackend(env=ENV)])


def render(source: str, chain: SecretsChain) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(source).render(var=VariableNamespace(chain), conn=ConnectionAccessor(chain))


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ var.value.bucket }}/in", "s3://data/in"),
    ("{{ var.value.get('bucket') }}", "s3://data"),
    ("{{ var.value.get('missing', 'fallback') }}", "fallback"),
    ("{{ var.json.settings.batch.size }}", "500"),
    ("{{ var.json.settings['mode'] }}", "fast"),
    ("{{ var.json.get('missing', {'a': 1}).a }}", "1"),
    ("{{ conn.warehouse.host }}:{{ conn.warehouse.port }}", "db.internal:5432"),
    ("{{ conn.get('warehouse').login }}", "etl"),
    ("{{ conn.get('missing') is none }}", "True"),
])
def test_template_access(template: str, expected: str, chain: SecretsChain) -> None:
    assert render(template, chain) == expected


def test_a_missing_variable_in_a_template_names_it(chain: SecretsChain) -> None:
    with pytest.raises(VariableNotFound, match="variable 'nope'"):
        render("{{ var.value.nope }}", chain)


def test_a_missing_connection_in_a_template_names_it(chain: SecretsChain) -> None:
    with pytest.raises(ConnectionNotFound, match="connection 'nope'"):
        render("{{ conn.nope.host }}", chain)


def test_accessors_can_be_built_alone(chain: SecretsChain) -> None:
    assert VariableAccessor(deserialize_json=False, chain=chain).bucket == "s3://data"
    assert VariableAccessor(True, chain)["settings"]["mode"] == "fast"
