"""Running the real `nbflow` command in a subprocess, configured by the `nbflow_env` fixture."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NbflowEnv


@dataclass(frozen=True)
class Done:
    """How one `nbflow ...` invocation ended."""

    code: int
    out: str
    err: str
    pid: int = 0  # the command's process id (to tell what ran in it from what ran in its children)

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_line(self) -> str:
        """The last stderr line (where a failing command puts its one-line error)."""
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""


@dataclass(frozen=True)
class Cli:
    env: NbflowEnv

    def __call__(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 120) -> Done:
        env = {**os.environ, **(extra_env or {})}
        with subprocess.Popen([sys.executable, "-m", "nbflow.cli.main", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=self.env.dags.parent) as process:
            try:
                out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        return Done(process.returncode, out, err, process.pid)


@pytest.fixture
def nbflow(nbflow_env: NbflowEnv) -> Cli:
    """`nbflow("dags", "list")` runs the command line in a fresh process against this test's dags folder."""
    return Cli(nbflow_env)



@pytest.fixture
def initialised(nbflow: Cli) -> Cli:
    """The CLI against a freshly initialised metadata database."""
    done = nbflow("db", "init")
    assert done.code == 0, done.err
    return nbflow


def raw_rows(home: Path, sql: str) -> list[tuple]:
    """Rows read straight from the SQLite file, past nbflow."""
    with sqlite3.connect(home / "nbflow.db") as db:
        return db.execute(sql).fetchall()
