"""The suite's own scaffolding: service gating, the isolated environment, the repo config."""
from __future__ import annotations

import importlib.metadata
import os
import tomllib
from pathlib import Path

import pytest

from tests.conftest import NbflowEnv, write_dag
from tests.services import require_service

REPO = Path(__file__).resolve().parents[1]


def test_missing_service_skips_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBFLOW_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis: nothing listens on 6379"):
        require_service("redis", "nothing listens on 6379")


def test_missing_service_fails_when_services_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="redis: nothing listens on 6379"):
        require_service("redis", "nothing listens on 6379")


def test_only_the_value_1_requires_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_REQUIRE_SERVICES", "0")
    with pytest.raises(pytest.skip.Exception):
        require_service("vault", "no bao binary")


@pytest.mark.parametrize(("required", "outcome"), [("", "skipped"), ("1", "failed")])
def test_a_test_needing_an_absent_service_reports_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: str, outcome: str
) -> None:
    monkeypatch.setenv("NBFLOW_REQUIRE_SERVICES", required)
    pytester.makepyfile(
        """
        from tests.services import require_service

        def test_needs_smtp():
            require_service("smtp", "aiosmtpd is not installed")
        """
    )
    result = pytester.runpytest_inprocess("-rsf", "-p", "no:xdist")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*smtp: aiosmtpd is not installed*"])


def test_repository_config_names_its_folders() -> None:
    data = tomllib.loads((REPO / "nbflow.toml").read_text(encoding="utf-8"))
    assert data["home"] == ".nbflow"
    assert data["core"]["dags_folder"] == "dags"
    assert data["core"]["plugins_folder"] == "extensions"
    assert data["core"]["notebooks_folder"] == "notebooks"


def test_nbflow_env_isolates_home_dags_and_config(nbflow_env: NbflowEnv, tmp_path: Path) -> None:
    assert os.environ["NBFLOW_HOME"] == str(tmp_path / "home")
    assert os.environ["NBFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "dags")
    assert "NBFLOW_CONFIG" not in os.environ
    assert nbflow_env.dags.is_dir()
    assert not any(parent.joinpath("nbflow.toml").exists() for parent in [Path.cwd(), *Path.cwd().parents])


def test_write_dag_dedents(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "sub/hello.py", """
        from nbflow import DAG
        with DAG("hello"):
            pass
    """)
    assert path.read_text() == 'from nbflow import DAG\nwith DAG("hello"):\n    pass\n'


def test_task_decorator_entry_points_are_declared() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="nbflow.task_decorators")}
    assert names == {"python", "branch", "short_circuit", "virtualenv", "external_python", "bash"}
