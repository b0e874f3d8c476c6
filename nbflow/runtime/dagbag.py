"""DagBag: the DAGs of a dags folder, each file imported under a time limit, failures recorded per file.

A file is compiled (bytecode cached in `__pycache__`) and executed into a fresh module registered in
`sys.modules` under a unique name, so functions and classes defined in it pickle and inspect as usual.
Its DAGs are its module globals plus the DAGs its import built through `with DAG(...)` or `@dag`
(drained from `nbflow.authoring.context.autoregistered`), as in Airflow. What a file produced is cached
per process by (path, mtime_ns, size): collecting an unchanged folder again costs a directory scan.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.authoring import context as authoring_context
from nbflow.exceptions import DagDefinitionError, DagNotFound
from nbflow.runtime import file_parsing as files
from nbflow.runtime.dag_source import DagSource, adopt_kernel_dag
from nbflow.utils.plugins import plugins_folder_on_path

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG

Stamp = tuple[int, int]  # (mtime_ns, size)


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """What importing one file produced: its DAGs, or why (some of) them could not be loaded."""

    path: str
    stamp: Stamp
    dags: tuple["DAG", ...] = ()
    errors: tuple[str, ...] = ()
    timed_out_after: float | None = None  # the limit it exceeded; a larger limit deserves a new try
    source: bytes = field(default=b"", repr=False)
    read_at_ns: int = 0  # wall clock when the source was read


@dataclass(frozen=True, slots=True)
class FolderChanges:
    """Which files a `refresh()` imported again, found new, or saw disappear."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


# The process-wide parse cache, keyed by absolute path. Parsing mutates process state anyway (sys.modules,
# sys.path, the autoregistration list), so files are parsed one at a time under this lock.
_parsed: dict[str, ParsedFile] = {}
_lock = threading.RLock()


def _new_lock_in_child() -> None:
    # A process forked while another thread parsed (the warm worker forks attempts) must not inherit
    # a lock that nobody in the child will ever release.
    global _lock
    _lock = threading.RLock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def clear_cache() -> None:
    """Forget every parsed file, so the next collect imports everything again."""
    with _lock:
        _parsed.clear()


class DagBag:
    """The DAGs of `dag_folder` (a folder, scanned recursively, or one file), by dag_id.

    `dags` maps dag_id to DAG; `import_errors` maps a file's absolute path to its error text, whose
    first line is `file:line: Type: message` and whose remaining lines are the traceback.
    `include_examples` is accepted for Airflow compatibility; nbflow ships its examples as a plain
    folder (`dags/` in the repository), so there is nothing extra to include.

    A file that fails to import after it once imported keeps its DAGs as they last loaded (the
    error is reported all the same): a typo saved while a run is going does not strand that run,
    and `kept` names the DAGs held that way.
    """

    def __init__(self, dag_folder: str | os.PathLike[str], *, import_timeout: float = 30.0,
                 include_examples: bool = False, collect: bool = True,
                 only_files: "Callable[[], Collection[str] | None] | None" = None) -> None:
        self.dag_folder = Path(os.path.abspath(dag_folder))
        self.import_timeout = float(import_timeout)
        self.include_examples = include_examples
        # Which files may be imported here (None: all): a worker imports only files the DAG processor
        # parsed into DAGs in its children, so a file that exits or hangs at import never reaches it.
        self.only_files = only_files
        self.dags: dict[str, DAG] = {}
        self.import_errors: dict[str, str] = {}
        self.file_dag_ids: dict[str, list[str]] = {}
        self.kept: dict[str, str] = {}  # dag_id -> file, for DAGs whose file fails to import now
        self.shadowed: dict[str, str] = {}  # dag_id -> file, for kernel DAGs that a saved file also defines
        self._files: dict[str, ParsedFile] = {}
        self._last_good: dict[str, dict[str, DAG]] = {}  # file -> the DAGs it last contributed
        self._listing_errors: dict[str, str] = {}
        self._extra: dict[str, ParsedFile] = {}  # DAGs from outside the folder (kernel cells), by location
        self.sources: dict[str, DagSource] = {}  # those cells as sources, for the DAG processor
        self._extra_changed: set[str] = set()  # locations added or replaced since the last refresh
        # A kernel adds cells from its main thread while its scheduler thread refreshes.
        self._mutex = threading.RLock()
        if collect:
            self.collect()

    def __repr__(self) -> str:
        return f"<DagBag {self.dag_folder}: {len(self.dags)} DAGs, {len(self.import_errors)} import errors>"

    @property
    def dag_ids(self) -> list[str]:
        return sorted(self.dags)

    def size(self) -> int:
        return len(self.dags)

    # -- collecting -----------------------------------------------------------------------------
    def collect(self) -> None:
        """Scan the folder and load every DAG file (unchanged files come from the cache)."""
        self.refresh()

    def refresh(self) -> FolderChanges:
        """Scan again: import added and changed files, drop removed ones; say which were which."""
        with self._mutex:
            return self._refresh()

    def _refresh(self) -> FolderChanges:
        listing = files.list_dag_files(self.dag_folder)
        allowed = self.only_files() if self.only_files is not None else None
        if allowed is not None:
            keep = set(allowed)
            listing = files.FolderListing({p: st for p, st in listing.files.items() if p in keep}, {})
        self._listing_errors = listing.errors
        _add_to_sys_path(self.dag_folder)
        previous = self._files
        current: dict[str, ParsedFile] = {}
        added: list[str] = []
        changed: list[str] = []
        for path, stamp in listing.files.items():
            known = previous.get(path)
            parsed = _parse_cached(path, stamp, self.import_timeout)
            if known is None:
                added.append(path)
            elif parsed is not known:
                changed.append(path)
            current[path] = parsed
        removed = [path for path in previous if path not in current]
        self._files = current
        self._assemble()
        changed.extend(sorted(self._extra_changed))
        self._extra_changed.clear()
        return FolderChanges(tuple(added), tuple(changed), tuple(removed))

    def process_file(self, path: str | os.PathLike[str]) -> list["DAG"]:
        """Import one file (again, if it changed) and return the DAGs it now contributes."""
        full = os.path.abspath(path)
        _add_to_sys_path(self.dag_folder)
        try:
            st = os.stat(full)
        except OSError:
            self._files.pop(full, None)
            self._assemble()
            return []
        self._files[full] = _parse_cached(full, (st.st_mtime_ns, st.st_size), self.import_timeout)
        self._files = dict(sorted(self._files.items()))
        self._assemble()
        return [self.dags[dag_id] for dag_id in self.file_dag_ids.get(full, [])]

    def add_source(self, source: DagSource) -> ParsedFile:
        """Add (or replace) DAGs that do not live in the folder: cells registered from a kernel."""
        parsed = parse_cells(source)
        with self._mutex:
            self.sources[source.location] = source
            self._extra[source.location] = parsed
            self._extra_changed.add(source.location)
            self._assemble()
        return parsed

    def remove_source(self, location: str) -> None:
        with self._mutex:
            self.sources.pop(location, None)
            if self._extra.pop(location, None) is not None:
                self._extra_changed.add(location)
                self._assemble()

    def _assemble(self) -> None:
        """Build `dags` and `import_errors` from the parsed files: the first file (by path) to define
        a dag_id keeps it; a later file defining it again gets an error naming both files."""
        dags: dict[str, DAG] = {}
        owners: dict[str, str] = {}
        errors: dict[str, str] = dict(self._listing_errors)
        file_dag_ids: dict[str, list[str]] = {}
        shadowed: dict[str, str] = {}
        for path, parsed in {**self._files, **self._extra}.items():
            problems = list(parsed.errors)
            for dag in parsed.dags:
                if dag.dag_id in dags and path in self._extra:
                    shadowed[dag.dag_id] = owners[dag.dag_id]  # a saved file wins over a kernel's cells
                    continue
                if dag.dag_id in dags:
                    line = files.definition_line(parsed.source, dag.dag_id)
                    where = f"{path}:{line}" if line else path
                    problems.append(f"{where}: NbflowDagDuplicatedIdException: DAG {dag.dag_id!r} is defined in "
                                    f"both {owners[dag.dag_id]} and {path}; rename one of them (dag_ids are "
                                    f"unique across the dags folder)")
                    continue
                dags[dag.dag_id] = dag
                owners[dag.dag_id] = path
                file_dag_ids.setdefault(path, []).append(dag.dag_id)
            if problems:
                errors[path] = "\n\n".join(problems)
        kept: dict[str, str] = {}
        for path, earlier in self._last_good.items():
            if path not in errors or path not in self._files:
                continue  # imports cleanly now, or was removed: what it defines now is what counts
            for dag_id, dag in earlier.items():
                if dag_id not in dags:
                    dags[dag_id], kept[dag_id] = dag, path
                    file_dag_ids.setdefault(path, []).append(dag_id)
        self._last_good = {path: {dag_id: dags[dag_id] for dag_id in ids} for path, ids in file_dag_ids.items()}
        self.dags = dags
        self.import_errors = errors
        self.file_dag_ids = file_dag_ids
        self.kept = kept
        self.shadowed = shadowed

    # -- lookups --------------------------------------------------------------------------------
    def get_dag(self, dag_id: str) -> "DAG":
        """The DAG with this id; DagNotFound says which ids exist, or why the file defining it failed."""
        if dag_id in self.dags:
            return self.dags[dag_id]
        for path, error in self.import_errors.items():
            parsed = self._files.get(path)
            if parsed is not None and files.definition_line(parsed.source, dag_id) is not None:
                raise DagNotFound(f"DAG {dag_id!r} could not be loaded: {error.splitlines()[0]}")
        known = ", ".join(sorted(self.dags)) or "none"
        hint = f"; {len(self.import_errors)} file(s) failed to import (nbflow dags list-import-errors)" \
            if self.import_errors else ""
        raise DagNotFound(f"DAG {dag_id!r} not found in {self.dag_folder}; known: {known}{hint}")

    def file_of(self, dag_id: str) -> str:
        """The absolute path of the file that defines `dag_id`."""
        for path, ids in self.file_dag_ids.items():
            if dag_id in ids:
                return path
        raise DagNotFound(f"DAG {dag_id!r} not found in {self.dag_folder}")


# -- parsing one file ---------------------------------------------------------------------------------

def _add_to_sys_path(folder: Path) -> None:
    """Helper modules next to DAG files, and plugin modules, import by their plain name, as in Airflow."""
    root = str(folder if folder.is_dir() else folder.parent)
    if root not in sys.path:
        sys.path.append(root)
    plugins_folder_on_path()


# File systems stamp mtimes with a coarse clock (ext4: one jiffy, several ms): a file rewritten that soon
# after it was read can keep its (mtime_ns, size). Like git's "racily clean" index entries, a file whose
# mtime is this close to when it was read is compared by content before its cached result is trusted.
_RACY_NS = 2_000_000_000


def _still_valid(cached: ParsedFile, path: str, stamp: Stamp, timeout: float) -> bool:
    if cached.stamp != stamp:
        return False
    if cached.timed_out_after is not None and timeout > cached.timed_out_after:
        return False
    if stamp[0] + _RACY_NS < cached.read_at_ns:
        return True
    try:
        with open(path, "rb") as file:
            return file.read() == cached.source
    except OSError:
        return False


def _parse_cached(path: str, stamp: Stamp, timeout: float) -> ParsedFile:
    with _lock:
        cached = _parsed.get(path)
        if cached is not None and _still_valid(cached, path, stamp, timeout):
            return cached
        parsed = parse_file(path, stamp, timeout=timeout)
        _parsed[path] = parsed
        return parsed


def parse_file(path: str, stamp: Stamp, *, timeout: float) -> ParsedFile:
    """Import one DAG file now (no cache) and say what it produced; never raises for the file's faults."""
    if path.endswith(".ipynb"):
        return _parse_notebook(path, stamp)
    read_at = time.time_ns()
    try:
        with open(path, "rb") as file:
            source = file.read()
    except OSError as err:
        return ParsedFile(path, stamp, errors=(f"{path}: cannot read the file: {err}",))
    if not files.might_contain_dag(source):
        return ParsedFile(path, stamp, source=source, read_at_ns=read_at)
    try:
        code = files.load_code(path, source)
    except SyntaxError as err:
        return ParsedFile(path, stamp, errors=(files.describe_exception(path, err),), source=source,
                          read_at_ns=read_at)
    except ValueError as err:  # null bytes in the source
        return ParsedFile(path, stamp, errors=(f"{path}: {type(err).__name__}: {err}",), source=source,
                          read_at_ns=read_at)
    module = types.ModuleType(_module_name(path))
    module.__file__ = path
    start = len(authoring_context.autoregistered)
    outcome = _execute(code, module, timeout)
    created = authoring_context.autoregistered[start:]
    del authoring_context.autoregistered[start:]
    if outcome.timed_out:
        sys.modules.pop(module.__name__, None)
        return ParsedFile(path, stamp, errors=(files.describe_timeout(path, timeout, outcome.frame),),
                          timed_out_after=timeout, source=source, read_at_ns=read_at)
    if outcome.error is not None:
        sys.modules.pop(module.__name__, None)
        return ParsedFile(path, stamp, errors=(files.describe_exception(path, outcome.error),), source=source,
                          read_at_ns=read_at)
    dags, errors = _dags_of(path, source, module, created)
    origin = DagSource.for_file(path, source)
    for dag in dags:
        dag.source = origin  # type: ignore[attr-defined]
    return ParsedFile(path, stamp, tuple(dags), tuple(errors), source=source, read_at_ns=read_at)


def _parse_notebook(path: str, stamp: Stamp) -> ParsedFile:
    """A notebook DAG file: its `%%dag` / `%%task` cells, read statically (no kernel), built into DAGs."""
    from nbflow.runtime.notebook_dags import build_dags, read_notebook

    read_at = time.time_ns()
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as err:
        return ParsedFile(path, stamp, errors=(f"{path}: cannot read the file: {err}",))
    if b"%%dag" not in content and b"%%nbflow.dag" not in content:
        return ParsedFile(path, stamp, source=content, read_at_ns=read_at)
    try:
        cells = read_notebook(path, content)
    except DagDefinitionError as err:
        return ParsedFile(path, stamp, errors=(str(err),), source=content, read_at_ns=read_at)
    result = build_dags(cells, where=path, base_folder=os.path.dirname(path))
    origin = DagSource.for_file(path, content)
    for dag in result.dags:
        dag.source = origin  # type: ignore[attr-defined]
    return ParsedFile(path, stamp, result.dags, result.errors, source=content, read_at_ns=read_at)


def parse_cells(source: DagSource) -> ParsedFile:
    """Cells a kernel registered: built like a notebook's, errors kept per DAG."""
    from nbflow.runtime.notebook_dags import build_dags, cells_from_json

    cells, base_folder = cells_from_json(source.text or "")
    result = build_dags(cells, where=source.location, base_folder=base_folder)
    for dag in result.dags:
        adopt_kernel_dag(dag, source)
    return ParsedFile(source.location, (0, 0), result.dags, result.errors)


def _module_name(path: str) -> str:
    # No dots: pickle imports the parent of a dotted module name, and there is none.
    stem = re.sub(r"\W", "_", Path(path).stem)
    return f"nbflow_dagfile_{hashlib.sha1(path.encode()).hexdigest()[:12]}_{stem}"


def _dags_of(path: str, source: bytes, module: types.ModuleType,
             created: Iterable[Any]) -> tuple[list["DAG"], list[str]]:
    """The module's DAGs, each validated; an invalid DAG is an error, the file's other DAGs stay."""
    from nbflow.authoring.dag import DAG

    candidates: dict[int, DAG] = {}
    for obj in created:
        # A DAG built while this file ran belongs to it (a factory in a helper module included), unless it
        # came from a file that timed out earlier and whose import thread is still running.
        if isinstance(obj, DAG) and (obj.fileloc == path or not _timed_out(obj.fileloc)):
            candidates[id(obj)] = obj
    for obj in list(vars(module).values()):
        if isinstance(obj, DAG):
            candidates.setdefault(id(obj), obj)
    dags: list[DAG] = []
    errors: list[str] = []
    seen: dict[str, DAG] = {}
    for dag in candidates.values():
        dag.fileloc = path
        if dag.dag_id in seen:
            line = files.definition_line(source, dag.dag_id)
            where = f"{path}:{line}" if line else path
            errors.append(f"{where}: NbflowDagDuplicatedIdException: DAG {dag.dag_id!r} is defined twice in "
                          f"this file; give each DAG its own dag_id")
            continue
        seen[dag.dag_id] = dag
        try:
            dag.validate()
        except DagDefinitionError as err:
            errors.append(files.describe_definition_error(path, files.definition_line(source, dag.dag_id), err))
            continue
        dags.append(dag)
    return dags, errors


def _timed_out(path: str) -> bool:
    cached = _parsed.get(path)
    return cached is not None and cached.timed_out_after is not None


# -- running a module under a time limit ------------------------------------------------------------

@dataclass
class _Outcome:
    error: BaseException | None = None
    timed_out: bool = False
    frame: types.FrameType | None = None


def _execute(code: types.CodeType, module: types.ModuleType, timeout: float) -> _Outcome:
    sys.modules[module.__name__] = module
    if timeout > 0 and threading.current_thread() is threading.main_thread():
        try:
            return _execute_with_alarm(code, module, timeout)
        except ValueError:  # signals unavailable here (e.g. a sub-interpreter): fall back to a thread
            pass
    if timeout <= 0:
        return _execute_plain(code, module)
    return _execute_in_thread(code, module, timeout)


def _execute_plain(code: types.CodeType, module: types.ModuleType) -> _Outcome:
    try:
        exec(code, module.__dict__)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - SystemExit from a DAG file is its error too
        return _Outcome(error=err)
    return _Outcome()


class _AlarmFired(BaseException):
    """Raised into the importing code by SIGALRM; a BaseException so that `except Exception` in a DAG
    file cannot swallow it."""


def _execute_with_alarm(code: types.CodeType, module: types.ModuleType, timeout: float) -> _Outcome:
    armed = [True]

    def on_alarm(signum: int, frame: Any) -> None:
        if armed[0]:  # a signal that arrives after the import ended must not escape into the DagBag
            raise _AlarmFired

    # Keep whatever timer was running (pytest-timeout, a task's execution_timeout) and restore it after.
    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, timeout)
    started = time.monotonic()
    try:
        try:
            exec(code, module.__dict__)
        finally:
            armed[0] = False
    except _AlarmFired as err:
        tb = err.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return _Outcome(timed_out=True, frame=tb.tb_frame if tb is not None else None)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - SystemExit from a DAG file is its error too
        return _Outcome(error=err)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:
            remaining = max(previous_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, remaining, previous_interval)
    return _Outcome()


def _execute_in_thread(code: types.CodeType, module: types.ModuleType, timeout: float) -> _Outcome:
    """Off the main thread no signal can interrupt the import: run it in a daemon thread and stop waiting.

    A file that never finishes keeps its thread; its module is dropped and its DAGs are never used.
    """
    outcome = _Outcome()

    def work() -> None:
        result = _execute_plain(code, module)
        outcome.error = result.error

    worker = threading.Thread(target=work, name=f"dagbag-import:{module.__file__}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        frame = sys._current_frames().get(worker.ident or -1)
        return _Outcome(timed_out=True, frame=frame)
    return outcome


__all__ = ["DagBag", "FolderChanges", "ParsedFile", "clear_cache", "parse_file"]
