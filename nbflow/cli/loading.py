"""The DAGs a command works on: the configured dags folder's DagBag, and one DAG by id."""
from __future__ import annotations

from typing import TYPE_CHECKING

from nbflow.cli.errors import CliError
from nbflow.configuration import Config

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.dagbag import DagBag


def open_dagbag(conf: Config, *, must_exist: bool = True) -> "DagBag":
    """Parse the dags folder (core.dags_folder) with the configured import timeout."""
    from nbflow.runtime.dagbag import DagBag
    folder = conf.dags_folder
    if must_exist and not folder.exists():
        raise CliError(f"the dags folder {folder} does not exist; create it, or point core.dags_folder at "
                       f"your DAG files (nbflow.toml, or NBFLOW__CORE__DAGS_FOLDER)")
    return DagBag(folder, import_timeout=conf.getfloat("core", "dagbag_import_timeout"))


def find_dag(conf: Config, dag_id: str) -> "DAG":
    """The DAG `dag_id`; a miss lists the known ids, or shows why the file that defines it failed."""
    from nbflow.exceptions import DagNotFound
    bag = open_dagbag(conf)
    try:
        return bag.get_dag(dag_id)
    except DagNotFound as err:
        raise CliError(str(err)) from None
