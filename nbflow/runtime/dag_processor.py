"""The DAG processor: keeps the metadata database's serialized DAGs in step with the dags folder.

`refresh` stats every DAG file; a file whose (mtime, size) is unchanged since it was parsed costs
nothing more, one whose stamp changed is hashed, and only new files and files whose content changed
are parsed, each in a child process (`parse_processes`). Results land in `serialized_dag` and
`dag_file` (with the file's import error); files that disappeared take their DAGs with them. No user
code ever runs in the calling process, so a file that exits, crashes, hangs or eats memory costs
the caller at most its import timeout, once, and becomes an import error naming the file.

`parse_folder` does the same without a database (before `nbflow db init`): every file, in children
(looking for one DAG: the files naming it first, the rest only if none defines it);
`parse_folder_in_subprocess` runs it from a spawned process, for a Jupyter kernel, which never forks.

Two cases re-parse or forget what is unchanged. A file whose import timed out under another
`core.dagbag_import_timeout` than the current one is parsed again (its stored error names the limit it
failed under), so raising the limit helps without touching the file. A kernel's cells are recorded with
the kernel (kernel_owners.py); they are forgotten once that kernel has exited, at any refresh on its
machine, or when it shuts down cleanly.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from nbflow.configuration import Config
from nbflow.runtime import file_parsing as files
from nbflow.runtime.dag_source import KERNEL_PREFIX, DagSource, content_hash
from nbflow.runtime.kernel_owners import forget_at_exit, kernel_gone, this_machine
from nbflow.runtime.parse_processes import ParseLimits, ParseOutcome, parse_in_children, timed_out_under_another_limit
from nbflow.runtime.serialized_dag import SerializedDag
from nbflow.utils.masking import masker

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nbflow.store.catalog import CatalogStore, CatalogWrites

# Like git's "racily clean" index entries: a file whose mtime is this close to when it was parsed may
# have been rewritten within one clock tick with the same size, so its content is hashed again.
_RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    """Where the DAG files are and how to parse them (from `[core]` and `[dag_processor]`)."""

    folder: Path
    limits: ParseLimits
    paused_at_creation: bool = True

    @classmethod
    def from_config(cls, config: Config) -> "ProcessorSettings":
        limits = ParseLimits(timeout=config.getfloat("core", "dagbag_import_timeout"),
                             processes=config.getint("dag_processor", "parsing_processes"),
                             max_memory_mb=config.getint("dag_processor", "max_memory_mb"))
        return cls(Path(os.path.abspath(config.dags_folder)), limits,
                   config.getboolean("core", "dags_are_paused_at_creation"))


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What one refresh did: files parsed (new or changed), files unchanged, files forgotten."""

    parsed: tuple[str, ...]
    unchanged: int
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FolderParse:
    """A folder parsed without a database: its DAGs (serialized) and its import errors, by path."""

    dags: dict[str, SerializedDag]
    import_errors: dict[str, str]


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return None


def _error_text(outcome: ParseOutcome) -> str | None:
    return "\n\n".join(outcome.errors) if outcome.errors else None


def _file_over_cells(path: str, other: str) -> bool:
    """A dags-folder file and a kernel's cells define the same DAG: the file wins, no error on either (the
    notebook's cells were exported to it, and the kernel shows its own copy beside the saved one)."""
    return not path.startswith(KERNEL_PREFIX) and other.startswith(KERNEL_PREFIX)


def _duplicate_error(path: str, dag_id: str, owner: str) -> str:
    return (f"{path}: NbflowDagDuplicatedIdException: DAG {dag_id!r} is defined in both {owner} and {path}; "
            f"rename one of them (dag_ids are unique across the dags folder)")


def _names(source: DagSource, dag_id: bytes) -> bool:
    """Whether `source` may define the DAG `dag_id`: its text names it and, for a Python file, it passes the
    safe-mode test (mentions "dag" and "nbflow"), as the DagBag would import it."""
    if not source.is_file:
        return True  # a kernel's cells: few, and already in memory
    content = _read(source.location)
    if content is None or dag_id not in content:
        return False
    return source.kind != "python" or files.might_contain_dag(content)


def _defined(order: list[DagSource], dag_id: str) -> "Callable[[dict[str, ParseOutcome]], bool]":
    """An `until` for parse_in_children: the first source of `order` that defines `dag_id` is known, every
    source before it having been parsed too (so the first definition by path still wins, as in a full parse)."""
    def until(outcomes: dict[str, ParseOutcome]) -> bool:
        for source in order:
            outcome = outcomes.get(source.location)
            if outcome is None:
                return False
            if dag_id in outcome.dag_ids:
                return True
        return False
    return until


def parse_folder(settings: ProcessorSettings, *, sources: Iterable[DagSource] = (),
                 dag_id: str | None = None) -> FolderParse:
    """Every DAG file of the folder, then kernel `sources`, parsed in children, nothing stored: for use
    before `db init`. A source's DAG id already defined by a file is a duplicate, as `refresh` has it.

    Looking for one DAG (`dag_id`), the files whose text names it are parsed first, stopping once it is
    found, and the others only if it is not: one slow or broken file elsewhere in the folder costs the
    lookup nothing. The result then holds only the files parsed."""
    listing = files.list_dag_files(settings.folder) if settings.folder.exists() else files.FolderListing({}, {})
    extra = {source.location: source for source in sources}
    everything = [*(DagSource.for_file(path) for path in listing.files), *extra.values()]
    outcomes: dict[str, ParseOutcome] = {}
    if dag_id is not None:
        wanted = dag_id.encode()
        first = [source for source in everything if _names(source, wanted)]
        outcomes = parse_in_children(first, settings.limits, until=_defined(first, dag_id))
    if dag_id is None or not any(dag_id in outcome.dag_ids for outcome in outcomes.values()):
        outcomes.update(parse_in_children([source for source in everything if source.location not in outcomes],
                                          settings.limits))
    dags: dict[str, SerializedDag] = {}
    errors: dict[str, str] = dict(listing.errors)
    for path in [*listing.files, *extra]:
        outcome = outcomes.get(path)
        if outcome is None:
            continue  # not needed to find `dag_id`
        problems = list(outcome.errors)
        for data in outcome.dags:
            if data["dag_id"] in dags:
                problems.append(_duplicate_error(path, data["dag_id"], dags[data["dag_id"]].fileloc))
                continue
            dags[data["dag_id"]] = SerializedDag(data)
        if problems:
            errors[path] = "\n\n".join(problems)
    return FolderParse(dags, errors)


def refresh(session_factory: "Callable[[], Session]", settings: ProcessorSettings, *,
            sources: Iterable[DagSource] = (), owner_pid: int | None = None) -> RefreshResult:
    """Bring the stored DAGs up to date with the folder (and with kernel `sources`, parsed as given, owned by
    the kernel process `owner_pid`, by default this one); forget the cells of kernels that have exited."""
    from nbflow.store.serialized_dags import SessionCatalog
    sources = list(sources)
    if sources and owner_pid is None:  # this process is the kernel: forget its cells when it exits cleanly
        forget_at_exit(id(session_factory), session_factory, os.getpid())
    return refresh_catalog(SessionCatalog(session_factory), settings, sources=sources, owner_pid=owner_pid)


def refresh_catalog(store: "CatalogStore", settings: ProcessorSettings, *,
                    sources: Iterable[DagSource] = (), owner_pid: int | None = None) -> RefreshResult:
    """`refresh` against any catalog store: SQLAlchemy sessions, or sqlite3 for SQLite (no SQLAlchemy import)."""
    from nbflow.secrets.known import register_environment_secrets

    register_environment_secrets()  # an import error may quote one; whoever refreshes, it is stored masked
    listing = files.list_dag_files(settings.folder) if settings.folder.exists() else files.FolderListing({}, {})
    known = store.dag_files()
    to_parse: dict[str, tuple[DagSource, int, int, str]] = {}
    touched: list[tuple[str, int, int]] = []
    unchanged = 0
    now_ns = time.time_ns()
    timeout = settings.limits.timeout
    for path, (mtime, size) in listing.files.items():
        row = known.get(path)
        parsed_ns = int(row.parsed_at.timestamp() * 1e9) if row is not None else 0
        if row is not None and timed_out_under_another_limit(row.import_error, timeout):
            row = None  # parse it again under the current limit
        if row is not None and (row.mtime, row.size) == (mtime, size) and mtime + _RACY_NS < parsed_ns:
            unchanged += 1
            continue
        content = _read(path)
        if content is None:
            continue  # vanished since the scan; the next refresh forgets it
        digest = content_hash(content)
        if row is not None and row.hash == digest:
            unchanged += 1
            if (row.mtime, row.size) != (mtime, size):
                touched.append((path, mtime, size))
            continue
        to_parse[path] = (DagSource(DagSource.for_file(path).kind, path, digest), mtime, size, digest)
    sources = list(sources)
    machine = this_machine()
    kernel = (os.getpid() if owner_pid is None else owner_pid, machine)
    for source in sources:
        row = known.get(source.location)
        if row is not None and row.hash == source.content_hash and \
                not timed_out_under_another_limit(row.import_error, timeout):
            unchanged += 1
            if (row.mtime, row.size) != kernel:  # the same cells from another (a restarted) kernel
                touched.append((source.location, *kernel))
            continue
        to_parse[source.location] = (source, *kernel, source.content_hash)
    outcomes = parse_in_children([item[0] for item in to_parse.values()], settings.limits) if to_parse else {}
    given = {source.location for source in sources}
    removed = [path for path, row in known.items() if path not in listing.files and path not in given and
               (not path.startswith(KERNEL_PREFIX) or kernel_gone(row.mtime, row.size, machine))]
    if to_parse or touched or removed or listing.errors:
        store.update(lambda owners: _plan(owners, listing, to_parse, outcomes, touched, removed, now_ns))
    return RefreshResult(tuple(to_parse), unchanged, tuple(removed))


def _plan(stored_owners: dict[str, str], listing: files.FolderListing,
          to_parse: dict[str, tuple[DagSource, int, int, str]], outcomes: dict[str, ParseOutcome],
          touched: list[tuple[str, int, int]], removed: list[str], now_ns: int) -> "CatalogWrites":
    """What to store after parsing `to_parse` (given the owners of the stored DAGs, read in the same transaction).

    `dag` rows (pause flags, next runs) stay the scheduler's and `dags trigger`'s to write (record_dags):
    a listing shows a DAG without one as paused or not by its default."""
    from nbflow.store.catalog import CatalogWrites, FileDags, FileRecord

    # Ids held by the files parsed now are theirs again only if they still define them (first by path wins).
    owners = {dag_id: path for dag_id, path in stored_owners.items() if path not in to_parse}
    replaced: list[FileDags] = []
    records: list[FileRecord] = []
    for path, (source, mtime, size, digest) in to_parse.items():
        outcome = outcomes.get(path) or ParseOutcome(path, errors=(f"{path}: DagFileProcessError: not parsed",))
        problems = list(outcome.errors)
        mine: dict[str, str] = {}
        for dag_id, text in zip(outcome.dag_ids, outcome.dag_texts):
            owner = owners.get(dag_id)
            if owner is not None and owner != path and (owner in listing.files or owner.startswith(KERNEL_PREFIX)):
                if _file_over_cells(path, owner):  # saved with `%dag export`: the file is what runs
                    pass
                elif _file_over_cells(owner, path):  # the kernel's copy: `%dag list` shows it as drift
                    continue
                else:
                    problems.append(_duplicate_error(path, dag_id, owner))
                    continue
            owners[dag_id] = path
            mine[dag_id] = text
        if mine or not problems:  # a file that breaks keeps its DAGs as last stored, beside its error
            replaced.append(FileDags(path, digest, tuple(mine), tuple(mine.values())))
        records.append(FileRecord(path, mtime, size, digest,
                                  masker.redact("\n\n".join(problems)) if problems else None))
    for path, error in listing.errors.items():  # invalid `.nbflowignore` lines
        records.append(FileRecord(path, 0, 0, "", error))
    return CatalogWrites(at=datetime.fromtimestamp(now_ns / 1e9, timezone.utc), touched=tuple(touched),
                         removed=tuple(removed), replaced=tuple(replaced), records=tuple(records))


def _spawn_processor(config: Config, request: dict) -> dict:
    """One run of `python -m nbflow.runtime.dag_processor` for `config`; its JSON answer, or one line of error."""
    import json
    import subprocess
    payload = json.dumps({"values": config.values, "file": str(config.file) if config.file else None, **request})
    done = subprocess.run([sys.executable, "-m", "nbflow.runtime.dag_processor"], input=payload, text=True,
                          capture_output=True, env=dict(config.env) or None, check=False)
    if done.returncode != 0:
        from nbflow.exceptions import NbflowException
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise NbflowException(f"the DAG processor failed: {last}")
    return json.loads(done.stdout)


def refresh_in_subprocess(config: Config, *, sources: Iterable[DagSource] = ()) -> RefreshResult:
    """`refresh` from a spawned process: for callers that must not fork (a Jupyter kernel); the cells
    `sources` are recorded as this process's."""
    sources = list(sources)
    if sources:
        from nbflow.store import make_engine, make_session_factory
        url = config.sql_alchemy_conn
        forget_at_exit(url, lambda: make_session_factory(make_engine(url))(), os.getpid())
    data = _spawn_processor(config, {"sources": [source.to_dict() for source in sources], "owner_pid": os.getpid()})
    return RefreshResult(tuple(data["parsed"]), data["unchanged"], tuple(data["removed"]))


def parse_folder_in_subprocess(config: Config, *, sources: Iterable[DagSource] = (),
                               dag_id: str | None = None) -> FolderParse:
    """`parse_folder` from a spawned process: before `db init`, for callers that must not fork (a kernel)."""
    data = _spawn_processor(config, {"sources": [source.to_dict() for source in sources], "store": False,
                                     "dag_id": dag_id})
    return FolderParse({dag_id: SerializedDag(item) for dag_id, item in data["dags"].items()}, data["import_errors"])


def _main() -> None:
    """`python -m nbflow.runtime.dag_processor`: for the config given as JSON on stdin, one refresh, or
    (`"store": false`) one parse of the folder and the given sources, printed as JSON."""
    import json
    given = json.loads(sys.stdin.read())
    config = Config(values=given["values"], env=dict(os.environ), file=Path(given["file"]) if given["file"] else None)
    sources = [DagSource.from_dict(item) for item in given.get("sources", [])]
    if not given.get("store", True):
        parsed = parse_folder(ProcessorSettings.from_config(config), sources=sources, dag_id=given.get("dag_id"))
        print(json.dumps({"dags": {dag_id: dag.data for dag_id, dag in parsed.dags.items()},
                          "import_errors": parsed.import_errors}))
        return
    from nbflow.store import make_engine, make_session_factory
    result = refresh(make_session_factory(make_engine(config.sql_alchemy_conn)), ProcessorSettings.from_config(config),
                     sources=sources, owner_pid=given.get("owner_pid"))
    print(json.dumps({"parsed": list(result.parsed), "unchanged": result.unchanged, "removed": list(result.removed)}))


def good_files(session_factory: "Callable[[], Session]") -> "set[str] | None":
    """Files from which the DAG processor stored DAGs (None when it cannot say: no table, or it never ran).

    Processes that import DAG files to run tasks (the local executor's worker and fork server) import
    only these, so a file that exits, crashes or hangs at import never reaches them."""
    from sqlalchemy.exc import SQLAlchemyError

    from nbflow.store import serialized_dags as stored
    from nbflow.store import session_scope
    try:
        with session_scope(session_factory) as session:
            known = stored.dag_files(session)
            if not known:
                return None  # the DAG processor never ran here (a scheduler given a DagBag): no filter
            killers = {path for path, row in known.items() if "DagFileProcessError:" in (row.import_error or "")}
            return set(stored.owners(session).values()) - killers
    except SQLAlchemyError:
        return None


def in_kernel() -> bool:
    """True inside a Jupyter kernel, which must never be forked (DESIGN.md)."""
    return "ipykernel" in sys.modules and any(name == "ipykernel.kernelapp" for name in sys.modules)


__all__ = ["FolderParse", "ProcessorSettings", "RefreshResult", "good_files", "in_kernel", "parse_folder",
           "parse_folder_in_subprocess", "refresh", "refresh_catalog", "refresh_in_subprocess"]

if __name__ == "__main__":
    _main()
