"""What every use case of `nbflow.runtime.api` works against: config, sessions, the parsed dags folder."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbflow.configuration import Config
from nbflow.exceptions import DagsFolderNotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nbflow.authoring.dag import DAG
    from nbflow.runtime.dagbag import DagBag


def open_dagbag(config: Config, *, must_exist: bool = True) -> "DagBag":
    """Parse the dags folder (core.dags_folder) with the configured import timeout.

    `must_exist=False` is for listings, where a missing folder simply holds no DAGs.
    """
    from nbflow.runtime.dagbag import DagBag
    folder = config.dags_folder
    if must_exist and not folder.exists():
        raise DagsFolderNotFound(str(folder))
    return DagBag(folder, import_timeout=config.getfloat("core", "dagbag_import_timeout"))


@dataclass
class Environment:
    """Config, database sessions and the DAG folder, built once per command or kernel.

    Mutable only to cache what is built on first use: the engine (so `dags test`, which needs no
    database, neither imports SQLAlchemy's engine nor creates $NBFLOW_HOME) and the parsed DagBag.
    """

    config: Config
    _sessions: "Callable[[], Session] | None" = None
    _readers: "Callable[[], Session] | None" = None
    _dagbag: "DagBag | None" = None

    @classmethod
    def from_config(cls, config: Config) -> "Environment":
        return cls(config=config)

    @property
    def sessions(self) -> "Callable[[], Session]":
        """Read-write sessions of the metadata database."""
        return self._factories()[0]

    @property
    def readers(self) -> "Callable[[], Session]":
        """Read-only sessions of the metadata database (same engine)."""
        return self._factories()[1]

    def _factories(self) -> "tuple[Callable[[], Session], Callable[[], Session]]":
        if self._sessions is None or self._readers is None:
            from nbflow.store import make_engine, make_session_factory
            engine = make_engine(self.config.sql_alchemy_conn)
            self._sessions = make_session_factory(engine)
            self._readers = make_session_factory(engine, read_only=True)
        return self._sessions, self._readers

    @property
    def dagbag(self) -> "DagBag":
        """The dags folder, parsed once (a missing folder holds no DAGs: a scheduler may start first)."""
        if self._dagbag is None:
            self._dagbag = open_dagbag(self.config, must_exist=False)
        return self._dagbag

    def get_dag(self, dag_id: str) -> "DAG":
        """The DAG `dag_id`; DagNotFound lists the known ids, or says why the file defining it failed,
        and DagsFolderNotFound says when there is no dags folder to look in."""
        bag = self.dagbag
        if dag_id not in bag.dags and not bag.dag_folder.exists():
            raise DagsFolderNotFound(str(self.config.dags_folder))
        return bag.get_dag(dag_id)
