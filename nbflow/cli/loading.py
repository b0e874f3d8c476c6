"""The runtime a command works on: one `api.Environment` per command, checked as the command needs."""
from __future__ import annotations

from typing import TYPE_CHECKING

from nbflow.configuration import Config

if TYPE_CHECKING:
    from nbflow.runtime.environment import Environment


def open_env(conf: Config, *, database: bool = True) -> "Environment":
    """The door's Environment for `conf`; with `database`, one line of error unless the database is ready.

    Commands that only parse DAG files (`dags list`, `dags test`, `tasks test`, ...) pass
    `database=False`: they work before `nbflow db init` and never create $NBFLOW_HOME.
    """
    from nbflow.runtime.environment import Environment  # `api.Environment`; `api` itself loads SQLAlchemy
    env = Environment.from_config(conf)
    if database:
        from nbflow.runtime import api
        api.require_database(env)
    return env
