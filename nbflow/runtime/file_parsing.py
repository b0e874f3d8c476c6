"""DAG files on disk: which files a dags folder holds, which may define DAGs, their bytecode, their errors.

The DagBag (`runtime/dagbag.py`) decides what a file's DAGs are; this module knows files: the recursive
scan honouring `.nbflowignore`, Airflow's safe-mode heuristic, a bytecode cache that survives processes,
and the one-line-then-traceback text of an import error.
"""
from __future__ import annotations

import importlib.util
import marshal
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType, TracebackType

IGNORE_FILE = ".nbflowignore"
DAG_FILE_SUFFIXES = (".py", ".ipynb")
_COMMENT = re.compile(r"\s*#.*")


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """One regexp line of an ignore file; it matches paths relative to that file's folder (Airflow's rule)."""

    pattern: re.Pattern[str]
    base: str

    def matches(self, path: str) -> bool:
        return self.pattern.search(os.path.relpath(path, self.base)) is not None


@dataclass(frozen=True, slots=True)
class FolderListing:
    """The DAG file candidates of a folder (absolute paths, sorted) with their (mtime_ns, size)."""

    files: dict[str, tuple[int, int]]
    errors: dict[str, str]  # ignore files with an invalid regexp, by path


def read_ignore_file(path: str) -> tuple[list[IgnoreRule], list[str]]:
    """The rules of one `.nbflowignore` and an error line for each line that is not a valid regexp."""
    rules: list[IgnoreRule] = []
    errors: list[str] = []
    base = os.path.dirname(path)
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        return [], [f"{path}: cannot read the ignore file: {err}"]
    for number, line in enumerate(lines, start=1):
        text = _COMMENT.sub("", line).strip()
        if not text:
            continue
        try:
            rules.append(IgnoreRule(re.compile(text), base))
        except re.error as err:
            errors.append(f"{path}:{number}: {text!r} is not a valid regular expression ({err}); "
                          f"fix or remove the line (lines are Python regexps, `#` starts a comment)")
    return rules, errors


def list_dag_files(folder: Path) -> FolderListing:
    """Every `.py`/`.ipynb` under `folder` that no `.nbflowignore` excludes, with its stat stamp.

    Hidden entries (`.git`, `.ipynb_checkpoints`) and `__pycache__` are never scanned: a checkpoint
    copy of a notebook DAG would otherwise define every DAG twice. Symlinked folders are followed (as
    Airflow does), each at most once, and never when they lead back to the folder or above it.
    """
    files: dict[str, tuple[int, int]] = {}
    errors: dict[str, str] = {}
    root = os.path.abspath(folder)
    if os.path.isfile(root):
        st = os.stat(root)
        return FolderListing({root: (st.st_mtime_ns, st.st_size)}, {})
    seen_dirs: set[str] = set()
    stack: list[tuple[str, list[IgnoreRule]]] = [(root, [])]
    while stack:
        directory, inherited = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        rules = inherited
        if any(entry.name == IGNORE_FILE for entry in entries):
            ignore_path = os.path.join(directory, IGNORE_FILE)
            own, bad = read_ignore_file(ignore_path)
            rules = inherited + own
            if bad:
                errors[ignore_path] = "\n".join(bad)
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name == "__pycache__":
                continue
            if rules and any(rule.matches(entry.path) for rule in rules):
                continue
            try:
                if entry.is_dir():
                    if entry.is_symlink():
                        real = os.path.realpath(entry.path)
                        if real in seen_dirs or real == root or root.startswith(real + os.sep):
                            continue
                        seen_dirs.add(real)
                    stack.append((entry.path, rules))
                elif name.endswith(DAG_FILE_SUFFIXES) and entry.is_file():
                    st = entry.stat()
                    files[entry.path] = (st.st_mtime_ns, st.st_size)
            except OSError:  # vanished while scanning
                continue
    return FolderListing(dict(sorted(files.items())), errors)


def might_contain_dag(source: bytes) -> bool:
    """Airflow's safe mode: only files that mention both "dag" and "nbflow" are imported."""
    lowered = source.lower()
    return b"dag" in lowered and b"nbflow" in lowered


# -- bytecode -------------------------------------------------------------------------------------

def _bytecode_path(path: str) -> str:
    # `opt-nbflow` keeps our file apart from the .pyc a normal `import` of the same file writes.
    return importlib.util.cache_from_source(path, optimization="nbflow")


def load_code(path: str, source: bytes) -> CodeType:
    """The compiled module code of `source`, from `__pycache__` when it was compiled before.

    The cache is validated by a hash of the path and the source, not by mtime: a file rewritten
    within one second with the same size (common in tests and generated DAGs) must not run stale code.
    """
    key = importlib.util.source_hash(path.encode() + b"\0" + source)
    cached = _bytecode_path(path)
    try:
        with open(cached, "rb") as file:
            data = file.read()
        if data[:4] == importlib.util.MAGIC_NUMBER and data[4:12] == key:
            return marshal.loads(data[12:])
    except (OSError, ValueError, EOFError, TypeError):
        pass
    # dont_inherit: this module's own `from __future__ import annotations` must not leak into DAG files.
    code = compile(source, path, "exec", dont_inherit=True)
    if not sys.dont_write_bytecode:
        try:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            temp = f"{cached}.{os.getpid()}.tmp"
            with open(temp, "wb") as file:
                file.write(importlib.util.MAGIC_NUMBER + key + marshal.dumps(code))
            os.replace(temp, cached)
        except OSError:  # a read-only dags folder still parses, just without the cache
            pass
    return code


# -- import errors --------------------------------------------------------------------------------

def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _message(err: BaseException, path: str) -> str:
    """The error's first line, without a leading copy of the file name (authoring errors add one)."""
    message = _first_line(str(err))
    if message.startswith(f"{path}: "):
        message = message[len(path) + 2:]
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def _trim(tb: TracebackType | None, path: str) -> TracebackType | None:
    """The traceback from the DAG file's first frame on: the DagBag's own frames say nothing."""
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename != path:
        start = start.tb_next
    return start or tb


def describe_exception(path: str, err: BaseException) -> str:
    """`file:line: Type: message` (the innermost line of the DAG file), then the traceback."""
    if isinstance(err, SyntaxError) and err.filename == path:
        summary = f"{path}:{err.lineno}: {type(err).__name__}: {err.msg}"
        detail = "".join(traceback.format_exception_only(type(err), err))
        return f"{summary}\n{detail}".rstrip()
    line = None
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        if frame.f_code.co_filename == path:
            line = lineno
    where = f"{path}:{line}" if line else path
    detail = "".join(traceback.format_exception(type(err), err, _trim(err.__traceback__, path)))
    return f"{where}: {_message(err, path)}\n{detail}".rstrip()


def describe_definition_error(path: str, line: int | None, err: BaseException) -> str:
    """An error found after the file ran (a cycle, a dangling dependency): no traceback to show."""
    where = f"{path}:{line}" if line else path
    return f"{where}: {_message(err, path)}"


def describe_timeout(path: str, seconds: float, frame: FrameType | None) -> str:
    """A file that did not finish importing in time, with the line it was running when given up on."""
    line = None
    f = frame
    while f is not None:
        if f.f_code.co_filename == path:
            line = f.f_lineno
            break
        f = f.f_back
    where = f"{path}:{line}" if line else path
    summary = (f"{where}: DagImportTimeout: the file took longer than {seconds:g} s to import "
               f"(core.dagbag_import_timeout); move slow work into tasks, or raise the limit")
    if frame is None:
        return summary
    return f"{summary}\n{''.join(traceback.format_stack(frame))}".rstrip()


def definition_line(source: bytes, dag_id: str) -> int | None:
    """The line that names `dag_id` (quoted, or as a `def` for `@dag`): where an error found later points."""
    needles = [f'"{dag_id}"'.encode(), f"'{dag_id}'".encode(), f"def {dag_id}(".encode()]
    for number, text in enumerate(source.splitlines(), start=1):
        if any(needle in text for needle in needles):
            return number
    return None
