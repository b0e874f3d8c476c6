"""Fixtures shared by the whole suite."""
from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ("pytester", "tests.services")


@dataclass(frozen=True)
class NbflowEnv:
    """Where the current test's nbflow keeps its state and reads its DAG files."""

    home: Path
    dags: Path


@pytest.fixture
def nbflow_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NbflowEnv:
    """An nbflow configured only by this test: fresh home, empty dags folder, no config file.

    The working directory moves to `tmp_path` so the repository's own nbflow.toml is not found,
    and NBFLOW_* settings from the caller's shell are removed. `home` is not created: nbflow
    must create it itself.
    """
    for name in list(os.environ):
        if name.startswith(("NBFLOW__", "NBFLOW_CONN_", "NBFLOW_VAR_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("NBFLOW_CONFIG", raising=False)
    env = NbflowEnv(home=tmp_path / "home", dags=tmp_path / "dags")
    env.dags.mkdir()
    monkeypatch.setenv("NBFLOW_HOME", str(env.home))
    monkeypatch.setenv("NBFLOW__CORE__DAGS_FOLDER", str(env.dags))
    monkeypatch.chdir(tmp_path)
    return env


def write_dag(folder: Path, name: str, text: str) -> Path:
    """Write `text`, dedented, to `folder/name` and return the file's path."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path
