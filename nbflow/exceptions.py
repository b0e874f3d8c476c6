"""Every error nbflow raises on purpose; messages say where, what, and what to do."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


class NbflowException(Exception):
    """Base of all nbflow errors (Airflow's AirflowException)."""


class NbflowConfigException(NbflowException):
    """A configuration value is missing or invalid."""


class UnknownPluginError(NbflowException, KeyError):
    """A registry lookup asked for a name nobody registered."""

    def __init__(self, kind: str, name: str, known: Sequence[str], where: str = "") -> None:
        self.kind, self.name = kind, name
        origin = f" ({where})" if where else ""
        super().__init__(f"unknown {kind} {name!r}{origin}; known: {', '.join(sorted(known)) or 'none'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


# --- authoring: a DAG file defined something wrong -------------------------------------------

class DagDefinitionError(NbflowException):
    """A DAG, task or dependency is defined wrongly; raised while a DAG file is parsed."""


class DuplicateTaskIdFound(DagDefinitionError):
    """Two tasks in one DAG share a task_id."""


class DagCycleException(DagDefinitionError):
    """The task dependencies form a cycle."""

    def __init__(self, dag_id: str, cycle: Sequence[str]) -> None:
        self.dag_id, self.cycle = dag_id, list(cycle)
        super().__init__(f"DAG {dag_id!r} has a cycle: {' >> '.join(self.cycle)}; remove one of these dependencies")


class InvalidScheduleError(DagDefinitionError):
    """A schedule is not a cron string, preset, timedelta, timetable or None."""


class TimetableNotRegistered(DagDefinitionError):
    """A custom Timetable class the scheduler cannot import: it must live in the plugins folder or a package."""


class ParamValidationError(NbflowException, ValueError):
    """A DAG or task param does not match its declared type or schema."""


class NbflowDagDuplicatedIdException(DagDefinitionError):
    """The same dag_id is defined in two files."""


class MagicSyntaxError(DagDefinitionError):
    """A notebook magic line (`%%task ...`) has a bad argument, or a magic cell cannot be used."""


class DagImportTimeout(DagDefinitionError):
    """A DAG file took longer than core.dagbag_import_timeout to load."""


class DagNotFound(NbflowException):
    """No DAG with that id is in the dags folder."""


class DagsFolderNotFound(NbflowConfigException):
    """core.dags_folder names a folder that does not exist."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        super().__init__(f"the dags folder {folder} does not exist; create it, or point core.dags_folder at "
                         f"your DAG files (nbflow.toml, or NBFLOW__CORE__DAGS_FOLDER)")


class GraphRenderError(NbflowException):
    """A DAG's graph could not be drawn: graphviz's `dot` is missing or failed, or the format is unknown."""


class TaskNotFound(NbflowException):
    """No task with that id is in the DAG."""


# --- running a task --------------------------------------------------------------------------

class NbflowSkipException(NbflowException):
    """Raise from a task to mark it skipped."""


class NbflowFailException(NbflowException):
    """Raise from a task to fail it at once, without retries."""


class NbflowTaskTimeout(NbflowException):
    """The task ran longer than its execution_timeout."""


class NbflowSensorTimeout(NbflowFailException):
    """A sensor did not succeed within its timeout; fails without retries."""


class NbflowRescheduleException(NbflowException):
    """A sensor in reschedule mode asks to be run again at `reschedule_date` (its slot is free meanwhile)."""

    def __init__(self, reschedule_date: "datetime") -> None:
        self.reschedule_date = reschedule_date
        super().__init__(f"rescheduled to {reschedule_date.isoformat()}")


class TemplateRenderError(NbflowException):
    """A template field could not be rendered (undefined variable, syntax error, missing file)."""


class XComError(NbflowException):
    """An XCom value cannot be stored (type or size) or pulled."""


class UndecryptableXComError(XComError):
    """An XCom value stored encrypted (`core.encrypt_xcom`) that no configured Fernet key decrypts."""

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int, key: str, problem: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index, self.key = dag_id, run_id, task_id, map_index, key
        label = task_id + (f"[{map_index}]" if map_index >= 0 else "")
        super().__init__(f"XCom {key!r} of task {label} of run {run_id} of DAG {dag_id!r} is encrypted and "
                         f"{problem}; put the key it was written with in core.fernet_key "
                         f"(NBFLOW__CORE__FERNET_KEY=NEW,OLD), or clear the task to compute it again")


class TaskDeferred(NbflowException):
    """Reserved for deferrable operators (Airflow compatibility)."""


class DownstreamTasksSkipped(NbflowException):
    """Internal signal: a branch decided which downstream tasks are skipped."""

    def __init__(self, tasks: Sequence[str]) -> None:
        self.tasks = list(tasks)
        super().__init__(f"skipping downstream tasks: {', '.join(self.tasks)}")


class TaskInstanceNotFound(NbflowException):
    """A DAG run has no task instance with that task id (and map index)."""

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = dag_id, run_id, task_id, map_index
        label = task_id + (f"[{map_index}]" if map_index >= 0 else "")
        super().__init__(f"run {run_id} of {dag_id} has no task instance {label}")


class TaskInstanceNotRunnable(NbflowException):
    """A task instance asked to run now is in a state that does not allow it (it ran, or is running)."""

    def __init__(self, dag_id: str, run_id: str, task_id: str, state: str | None) -> None:
        self.dag_id, self.run_id, self.task_id, self.state = dag_id, run_id, task_id, state
        super().__init__(f"task {task_id} of run {run_id} is {state}; clear it first "
                         f"(`nbflow tasks clear {dag_id} {run_id} -t '^{task_id}$'`)")


class MapIndexError(NbflowException, ValueError):
    """A map index was given for an unmapped task, is out of range, or cannot be known without upstream tasks."""


class XComNotFound(XComError, KeyError):
    """A task instance pushed no XCom under that key."""

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int, key: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index, self.key = dag_id, run_id, task_id, map_index, key
        label = task_id + (f"[{map_index}]" if map_index >= 0 else "")
        super().__init__(f"task {label} of run {run_id} of DAG {dag_id!r} pushed no XCom {key!r}; "
                         f"it has not run, or returned nothing")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


# Airflow's names, kept for renamed DAG files.
NbflowNotFoundException = TaskNotFound
NbflowTaskTerminated = NbflowTaskTimeout


# --- store: the metadata database ----------------------------------------------------------

class MetadataDatabaseError(NbflowException):
    """The metadata database refused or failed an operation."""


class DatabaseUnavailableError(MetadataDatabaseError):
    """The metadata database cannot be reached, opened or written; `url` has its password hidden."""

    def __init__(self, url: str, problem: str, hint: str = "") -> None:
        self.url = url
        advice = f"; {hint}" if hint else ""
        super().__init__(f"metadata database {url}: {problem}{advice}")


class DatabaseDriverMissing(MetadataDatabaseError, NbflowConfigException):
    """The database URL names a driver (DBAPI module) that is not installed; says which package to install."""

    def __init__(self, url: str, module: str, install: str) -> None:
        self.url, self.module, self.install = url, module, install
        super().__init__(f"metadata database {url}: its driver {module!r} is not installed; run `{install}` "
                         f"(or pick another driver in [database] sql_alchemy_conn)")


class DatabaseBusyError(MetadataDatabaseError):
    """A transaction still found the database locked (or a serialization conflict) after every retry."""


class InvalidStateError(MetadataDatabaseError, ValueError):
    """A state, run type or column name given to a store function is not one the store knows."""


class DagRunAlreadyExists(MetadataDatabaseError):
    """A DAG run with this dag_id and run_id exists already (Airflow's name)."""

    def __init__(self, dag_id: str, run_id: str) -> None:
        self.dag_id, self.run_id = dag_id, run_id
        super().__init__(f"DAG {dag_id!r} already has a run {run_id!r}; pick another run_id "
                         f"or clear the existing run")


class DagRunNotFound(MetadataDatabaseError):
    """No DAG run with this dag_id and run_id is in the database (Airflow's name)."""

    def __init__(self, dag_id: str, run_id: str) -> None:
        self.dag_id, self.run_id = dag_id, run_id
        super().__init__(f"DAG {dag_id!r} has no run {run_id!r}; `nbflow dags list-runs {dag_id}` lists its runs")


class NoDagRunYet(DagRunNotFound):
    """A DAG's latest run was asked for, and it has never run."""

    def __init__(self, dag_id: str) -> None:
        self.dag_id, self.run_id = dag_id, None
        MetadataDatabaseError.__init__(self, f"DAG {dag_id!r} has no runs yet; trigger one with "
                                             f"`nbflow dags trigger {dag_id}`")


class DatabaseNotReady(MetadataDatabaseError):
    """The metadata database is unreachable, or not initialised to the newest revision."""

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(message)


# --- secrets: connections, variables and the backends that hold them --------------------------

class SecretsError(NbflowException):
    """A connection, variable or secrets backend could not be resolved."""


class _NamedKeyError(SecretsError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _searched(backends: Sequence[str]) -> str:
    return ", ".join(backends) if backends else "no backends (secrets.backends is empty)"


class ConnectionNotFound(_NamedKeyError):
    """No secrets backend holds a connection with this conn_id."""

    def __init__(self, conn_id: str, backends: Sequence[str] = ()) -> None:
        self.conn_id, self.backends = conn_id, list(backends)
        super().__init__(f"connection {conn_id!r} is not defined; searched {_searched(self.backends)}; "
                         f"add it with `nbflow connections add {conn_id} --conn-uri ...` or as "
                         f"NBFLOW_CONN_{conn_id.upper()}")


class VariableNotFound(_NamedKeyError):
    """No secrets backend holds a variable with this key (a KeyError, as in Airflow)."""

    def __init__(self, key: str, backends: Sequence[str] = ()) -> None:
        self.key, self.backends = key, list(backends)
        super().__init__(f"variable {key!r} does not exist; searched {_searched(self.backends)}; "
                         f"set it with `nbflow variables set {key} VALUE` or as NBFLOW_VAR_{key.upper()}, "
                         f"or pass default_var")


class SecretsBackendUnavailable(SecretsError):
    """A secrets backend could not be reached or refused to answer."""

    def __init__(self, backend: str, problem: str, hint: str = "") -> None:
        self.backend, self.problem = backend, problem
        advice = f"; {hint}" if hint else ""
        super().__init__(f"secrets backend {backend!r} is unavailable: {problem}{advice}")


class SecretsBackendMisconfigured(SecretsError):
    """A backend answers, but its settings point at the wrong place (a Vault mount that does not exist, the other
    KV version, a path its policy denies): logged once as a warning, and lookups go on to the next backend."""

    def __init__(self, backend: str, mount: str, path: str, problem: str, fix: str) -> None:
        self.backend, self.mount, self.path, self.problem = backend, mount, path, problem
        super().__init__(f"{backend}: mount point {mount!r}, path {path!r}: {problem}; {fix}; until then its "
                         f"lookups fall through to the next secrets backend")


class InvalidSecretError(SecretsError, ValueError):
    """A stored secret has the wrong shape (e.g. a Vault variable without a `value` key)."""


class InvalidConnectionError(InvalidSecretError):
    """A connection URI, JSON document or field is malformed; the message names the connection."""


class UndecryptableSecretError(SecretsError):
    """A stored value was encrypted with a Fernet key that is no longer configured."""

    def __init__(self, what: str, field: str) -> None:
        self.what, self.field = what, field
        super().__init__(f"{what}: the stored {field} cannot be decrypted with any key in core.fernet_key; "
                         f"add the key it was encrypted with (comma-separated, newest first) or set the "
                         f"value again")


# --- notifications: e-mail and notifiers ------------------------------------------------------

class EmailDeliveryError(NbflowException):
    """An e-mail could not be handed to the SMTP server; the message names host:port and the cause."""

    def __init__(self, host: str, port: int, cause: str) -> None:
        self.host, self.port, self.cause = host, port, cause
        super().__init__(f"could not send e-mail through {host}:{port} ({cause})")


# --- notebook tasks: NotebookOperator ---------------------------------------------------------

class NotebookTaskError(NbflowException):
    """A notebook task could not run its notebook, or the notebook failed."""


class NotebookDefinitionError(NotebookTaskError, NbflowFailException):
    """The task names a notebook, kernel or parameter that cannot work; retrying would not help."""


class NotebookNotFound(NotebookDefinitionError, FileNotFoundError):
    """input_nb names no file in any of the places a notebook is looked for."""

    def __init__(self, task_id: str, name: str, searched: Sequence[str]) -> None:
        self.task_id, self.name, self.searched = task_id, name, list(searched)
        super().__init__(f"task {task_id!r}: notebook {name!r} not found; looked for {', '.join(self.searched)}; "
                         f"give input_nb as an absolute path, or relative to the DAG file or to "
                         f"core.notebooks_folder")

    def __str__(self) -> str:  # FileNotFoundError would format its own message
        return str(self.args[0])


class NotebookUnreadable(NotebookDefinitionError):
    """The notebook file exists but is not a notebook nbformat can read."""


class KernelNotFound(NotebookDefinitionError):
    """No installed Jupyter kernelspec has the kernel name the task or its notebook asks for."""

    def __init__(self, task_id: str, kernel_name: str, known: Sequence[str], where: str) -> None:
        self.task_id, self.kernel_name, self.known = task_id, kernel_name, list(known)
        super().__init__(f"task {task_id!r}: no Jupyter kernel named {kernel_name!r} ({where}); installed kernels: "
                         f"{', '.join(self.known) or 'none'}; install it (for Python: python -m ipykernel install "
                         f"--user --name {kernel_name}) or pass kernel_name= one of those")


class NotebookParameterError(NotebookDefinitionError, TypeError):
    """A notebook parameter cannot be written into the injected-parameters cell."""


class KernelStartError(NotebookTaskError):
    """The notebook's kernel died or did not answer while starting (retried like any failure)."""


class NotebookCellError(NotebookTaskError):
    """A cell of the notebook raised: which notebook, which cell, what error, where the executed copy is."""

    def __init__(self, task_id: str, notebook: str, cell_index: int, execution_count: int | None, ename: str,
                 evalue: str, output_notebook: str) -> None:
        self.task_id, self.notebook, self.cell_index = task_id, notebook, cell_index
        self.execution_count, self.ename, self.evalue = execution_count, ename, evalue
        self.output_notebook = output_notebook
        where = f"cell {cell_index}" + (f" (In [{execution_count}])" if execution_count else "")
        super().__init__(f"task {task_id!r}: notebook {notebook} failed at {where}: {ename}: {evalue}; "
                         f"the executed notebook is {output_notebook}")
