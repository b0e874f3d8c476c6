"""What every use case of `nbflow.runtime.api` works against: config, sessions, the DAGs of the dags folder."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nbflow.configuration import Config
from nbflow.exceptions import DagsFolderNotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nbflow.authoring.dag import DAG
    from nbflow.runtime.dag_loader import DagFileLoader
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
    database, neither imports SQLAlchemy's engine nor creates $NBFLOW_HOME), the DAGs loaded to run
    here, and (in a kernel) the DAGs of its cells.
    """

    config: Config
    _sessions: "Callable[[], Session] | None" = None
    _readers: "Callable[[], Session] | None" = None
    _dagbag: "DagBag | None" = None
    _cells: "DagBag | None" = None
    _loader: "DagFileLoader | None" = None
    _loaded: "dict[str, DAG]" = field(default_factory=dict)

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
            from nbflow.runtime.xcom_encryption import configure_xcom_encryption
            from nbflow.store import make_engine, make_session_factory
            configure_xcom_encryption(self.config)  # XComs written and read through these sessions
            engine = make_engine(self.config.sql_alchemy_conn)
            self._sessions = make_session_factory(engine)
            self._readers = make_session_factory(engine, read_only=True)
        return self._sessions, self._readers

    @property
    def dagbag(self) -> "DagBag":
        """The whole dags folder parsed in this process, once: for tests and tools that want every DAG object
        here. Interfaces use `get_dag` (one file) or the DAG processor's catalog; a kernel uses `cells`."""
        if self._dagbag is None:
            self._dagbag = open_dagbag(self.config, must_exist=False)
        return self._dagbag

    @property
    def cells(self) -> "DagBag":
        """The DAGs a Jupyter kernel's cells define (`cells.add_source`), held in this process; it never
        imports a file of the dags folder, whose DAGs a kernel reads from the DAG processor's catalog."""
        if self._cells is None:
            from nbflow.runtime.dagbag import DagBag
            self._cells = DagBag(self.config.dags_folder, collect=False, only_files=frozenset)
        return self._cells

    @property
    def held_dagbag(self) -> "DagBag | None":
        """The in-process DagBag if this environment already built one (a kernel's cells, or the whole
        folder), else None; never builds it."""
        return self._cells if self._cells is not None else self._dagbag

    @property
    def loader(self) -> "DagFileLoader":
        """Imports single DAG files in this process (see `get_dag`)."""
        if self._loader is None:
            from nbflow.runtime.dag_loader import DagFileLoader
            self._loader = DagFileLoader(self.config.dags_folder,
                                         import_timeout=self.config.getfloat("core", "dagbag_import_timeout"))
        return self._loader

    def get_dag(self, dag_id: str) -> "DAG":
        """The DAG `dag_id` with its code, to run here; DagNotFound lists the known ids, or says why the file
        defining it failed, and DagsFolderNotFound says when there is no dags folder to look in.

        The DAG processor's children find the file that defines it (and whether it imports); only that file
        is imported in this process, so another file that exits, hangs or is slow at import costs nothing
        here (in a Jupyter kernel, which must not fork, a spawned processor parses). A DAG of a kernel's
        cells, and an environment already holding the whole folder's DagBag, answer from what they hold.
        """
        if self._cells is not None and dag_id in self._cells.dags:
            return self._cells.dags[dag_id]
        bag = self._dagbag
        if bag is not None:
            if dag_id not in bag.dags and not bag.dag_folder.exists():
                raise DagsFolderNotFound(str(self.config.dags_folder))
            return bag.get_dag(dag_id)
        if dag_id not in self._loaded:
            from nbflow.runtime.dag_catalog import catalog
            stored = catalog(self, dag_id=dag_id).importable(dag_id, self.config.dags_folder)
            self._loaded[dag_id] = self.loader.load(stored.source, dag_id)
        return self._loaded[dag_id]
