"""PythonVirtualenvOperator and ExternalPythonOperator: run a task's function in another Python interpreter.

What crosses to the other interpreter is the function's source, not the function object: it is written, with a
small runner script, into a temporary folder and run there; the arguments go in and the return value comes back
through files, as JSON (nbflow's XCom format, the default), pickle, cloudpickle or dill. So, as in Airflow, the
function must be self-contained: its imports inside its body, no variables from an enclosing function.
"""
from __future__ import annotations

import ast
import fcntl
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import types
from collections import deque
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbflow.authoring.taskflow import DecoratedOperator, task_decorator_factory, task_decorators
from nbflow.exceptions import (
    DagDefinitionError,
    NbflowException,
    NbflowFailException,
    NbflowSkipException,
)
from nbflow.operators.python import PythonOperator
from nbflow.utils.serialization import deserialize, serialize

__all__ = ["ExternalPythonOperator", "PythonVirtualenvOperator", "external_python_task", "is_venv_installed",
           "prepare_virtualenv", "virtualenv_task"]

SERIALIZERS = ("json", "pickle", "cloudpickle", "dill")

# Context entries that are plain data and so can cross to another interpreter: Airflow's
# BASE_SERIALIZABLE_CONTEXT_KEYS and PENDULUM_SERIALIZABLE_CONTEXT_KEYS, plus params and templates_dict.
SERIALIZABLE_CONTEXT_KEYS = frozenset({
    "ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz", "run_id", "task_instance_key_str", "try_number",
    "logical_date", "execution_date", "data_interval_start", "data_interval_end",
    "prev_ds", "prev_ds_nodash", "next_ds", "next_ds_nodash",
    "yesterday_ds", "yesterday_ds_nodash", "tomorrow_ds", "tomorrow_ds_nodash",
    "prev_data_interval_start_success", "prev_data_interval_end_success", "prev_start_date_success",
    "prev_end_date_success", "map_index_template", "expanded_ti_count", "test_mode", "params", "templates_dict",
})

# Written last into a cached virtualenv: a folder without it was left half-built by a run that died.
VENV_MARKER = "nbflow_venv.json"
_STDERR_TAIL_LINES = 30


def _find_uv() -> str | None:
    """The `uv` binary on PATH or next to this interpreter (a project venv usually has one)."""
    beside = Path(sys.prefix) / "bin" / "uv"
    return shutil.which("uv") or (str(beside) if os.access(beside, os.X_OK) else None)


def is_venv_installed() -> bool:
    """Whether a virtualenv can be created here: uv, the virtualenv package, or the venv module with ensurepip."""
    return any((_find_uv(), importlib.util.find_spec("virtualenv"), importlib.util.find_spec("ensurepip")))


# --- running a command with its output in the task log ------------------------------------------

def _run_streaming(cmd: Sequence[str], *, env: Mapping[str, str] | None = None,
                   started: Callable[[subprocess.Popen[str]], None] | None = None) -> tuple[int, list[str]]:
    """Run `cmd`, printing its stdout and stderr line by line as they come, so they reach the task log.

    Returns the exit code and the last lines of stderr (where Python writes a traceback).
    """
    out, lock = sys.stdout, threading.Lock()
    tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)

    def pump(stream: Any, keep: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if keep:
                tail.append(line)
            with lock:  # print() writes the text and the newline separately; keep lines whole
                print(line, file=out, flush=True)

    proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(env) if env is not None else None, text=True, encoding="utf-8",
                            errors="replace", bufsize=1)
    if started is not None:
        started(proc)
    pumps = [threading.Thread(target=pump, args=(proc.stdout, False), daemon=True, name="venv-stdout"),
             threading.Thread(target=pump, args=(proc.stderr, True), daemon=True, name="venv-stderr")]
    for thread in pumps:
        thread.start()
    try:
        code = proc.wait()
    except BaseException:  # the attempt timed out or was interrupted: do not leave the child running
        proc.kill()
        proc.wait()
        raise
    finally:
        for thread in pumps:
            # Bounded: a process the function started in the background may still hold the pipes open.
            thread.join(timeout=5)
    return code, list(tail)


def _command_error(what: str, cmd: Sequence[str], code: int, tail: list[str]) -> NbflowException:
    shown = " ".join(cmd[:4]) + (" ..." if len(cmd) > 4 else "")
    return NbflowException(f"{what} failed: `{shown}` exited with code {code}:\n" + "\n".join(tail[-15:]))


# --- virtualenvs -----------------------------------------------------------------------------------

def prepare_virtualenv(venv_dir: str | Path, *, python: str | None = None, system_site_packages: bool = True,
                       requirements: Sequence[str] = (), pip_install_options: Sequence[str] = (),
                       index_urls: Sequence[str] | None = None, installer: str = "auto") -> str:
    """Create a virtualenv at `venv_dir` and install `requirements` into it; returns the path of its python.

    `python` is an interpreter path or a version such as "3.12" (default: this interpreter). `installer` is
    "uv" (`uv venv` + `uv pip install`, much the fastest), "pip" (the virtualenv package or `python -m venv`,
    then pip), or "auto": uv when a `uv` binary is on PATH or beside this interpreter, else pip.
    """
    venv_dir = Path(venv_dir)
    uv = _find_uv() if installer in ("auto", "uv") else None
    if installer == "uv" and uv is None:
        raise NbflowFailException("installer 'uv' was asked for but no `uv` binary is on PATH or in "
                                  f"{Path(sys.prefix) / 'bin'}; install uv or use installer='pip'")
    if installer not in ("auto", "uv", "pip"):
        raise NbflowFailException(f"installer {installer!r} is not one of: auto, uv, pip")
    site = ["--system-site-packages"] if system_site_packages else []
    if uv is not None:
        create = [uv, "venv", "--python", python or sys.executable, *site, str(venv_dir)]
    elif importlib.util.find_spec("virtualenv") is not None:  # seeds pip from a wheel cache: faster than ensurepip
        create = [sys.executable, "-m", "virtualenv", "--quiet", "--python", python or sys.executable, *site,
                  str(venv_dir)]
    else:
        create = [_python_binary(python), "-m", "venv", *site, str(venv_dir)]
    print(f"Creating virtualenv {venv_dir}")
    code, tail = _run_streaming(create)
    if code != 0:
        raise _command_error(f"creating the virtualenv {venv_dir}", create, code, tail)
    venv_python = str(venv_dir / "bin" / "python")
    if requirements:
        req_file = venv_dir / "requirements.txt"
        req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        indexes = [*(["--index-url", index_urls[0]] if index_urls else []),
                   *(arg for url in (index_urls or [])[1:] for arg in ("--extra-index-url", url))]
        if uv is not None:
            install = [uv, "pip", "install", "--python", venv_python, *indexes, *pip_install_options,
                       "-r", str(req_file)]
        else:
            install = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *indexes,
                       *pip_install_options, "-r", str(req_file)]
        print(f"Installing {', '.join(requirements)}")
        code, tail = _run_streaming(install)
        if code != 0:
            raise _command_error(f"installing requirements into {venv_dir}", install, code, tail)
    return venv_python


def _python_binary(python: str | None) -> str:
    """An interpreter for `python -m venv`: this one, a path, or `pythonX.Y` found on PATH."""
    if python is None:
        return sys.executable
    if os.sep in python:
        return python
    found = shutil.which(python if python.startswith("python") else f"python{python}")
    if found is None:
        raise NbflowFailException(f"no interpreter for python_version {python!r}: python{python} is not on PATH; "
                                  f"install that Python, or install uv, which can fetch it")
    return found


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


# --- the function's source -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FunctionSource:
    """A function's own source, to run in another interpreter, and where it came from."""

    name: str
    text: str        # dedented; task decorators blanked out, so line numbers still match `filename`
    filename: str
    first_line: int  # the line of `text`'s first line in `filename`


def _is_task_decorator(node: ast.expr) -> bool:
    """`@task`, `@task.virtualenv(...)`, `@virtualenv_task`: the decorators that made the task, not user ones."""
    while isinstance(node, ast.Call):
        node = node.func
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return any(part == "task" or part.endswith("_task") for part in parts)


def function_source(fn: Callable[..., Any], *, where: str) -> FunctionSource:
    """The source of `fn`, dedented, with its task decorators removed (Airflow's way; other decorators stay)."""
    try:
        lines, first_line = inspect.getsourcelines(fn)
        filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
    except (OSError, TypeError) as err:
        raise NbflowFailException(f"{where}: the source of {fn.__qualname__}() cannot be read ({err}); it runs "
                                  f"in another interpreter from its source, so define it in a .py file or a "
                                  f"notebook cell") from err
    text = textwrap.dedent("".join(lines))
    # A line less indented than the `def` (inside a multi-line string) stops dedent; an `if` block still
    # defines the function at the top level.
    wrapped = text[:1].isspace()
    if wrapped:
        text, first_line = "if True:\n" + text, first_line - 1
    try:
        tree = ast.parse(text)
        node = tree.body[0].body[0] if wrapped else tree.body[0]  # type: ignore[attr-defined]
    except (SyntaxError, IndexError) as err:
        raise NbflowFailException(f"{where}: the source of {fn.__qualname__}() in {filename} could not be "
                                  f"parsed on its own ({err})") from err
    if not isinstance(node, ast.FunctionDef):
        raise NbflowFailException(f"{where}: {fn.__qualname__}() is not defined by a plain `def` statement")
    kept = text.splitlines(keepends=True)
    for decorator in node.decorator_list:
        if _is_task_decorator(decorator):
            for index in range(decorator.lineno - 1, decorator.end_lineno or decorator.lineno):
                kept[index] = "\n"  # blank, not removed: tracebacks keep the file's line numbers
    return FunctionSource(node.name, "".join(kept), filename, max(first_line, 1))


# Runs in the other interpreter, which may be an older Python without nbflow: standard library only, and
# Python 3.7 or later (datetime.fromisoformat). Its JSON format is nbflow's XCom format (nbflow.utils.serialization).
_RUNNER = r'''"""Written by nbflow: runs one task's function in this interpreter and writes back what it returned."""
import json as _nbflow_json
import sys as _nbflow_sys

_NBFLOW_TAG = "__nbflow_type__"


def _nbflow_encode(value):
    import dataclasses
    import datetime as dt
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError("dict key %r is a %s; JSON dict keys must be strings" % (key, type(key).__name__))
        return {k: _nbflow_encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nbflow_encode(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {_NBFLOW_TAG: "tuple", "items": [_nbflow_encode(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        kind = "set" if isinstance(value, set) else "frozenset"
        return {_NBFLOW_TAG: kind, "items": [_nbflow_encode(v) for v in value]}
    if isinstance(value, dt.datetime):
        return {_NBFLOW_TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {_NBFLOW_TAG: "date", "value": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {_NBFLOW_TAG: "timedelta", "value": value.total_seconds()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = {f.name: _nbflow_encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_NBFLOW_TAG: "dataclass", "class": cls.__module__ + ":" + cls.__qualname__, "fields": fields}
    raise TypeError("a %s.%s cannot be sent as JSON; use JSON-compatible data (dict, list, str, number), a "
                    "datetime, set, tuple or dataclass, or serializer='pickle'"
                    % (type(value).__module__, type(value).__qualname__))


def _nbflow_decode(value):
    import datetime as dt
    if isinstance(value, list):
        return [_nbflow_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_NBFLOW_TAG)
    if tag is None:
        return {k: _nbflow_decode(v) for k, v in value.items()}
    if tag in ("tuple", "set", "frozenset"):
        kind = {"tuple": tuple, "set": set, "frozenset": frozenset}[tag]
        return kind(_nbflow_decode(v) for v in value["items"])
    if tag == "datetime":
        return dt.datetime.fromisoformat(value["value"])
    if tag == "date":
        return dt.date.fromisoformat(value["value"])
    if tag == "timedelta":
        return dt.timedelta(seconds=value["value"])
    if tag == "dataclass":  # the class lives in the DAG's interpreter: its fields are what can arrive here
        return {k: _nbflow_decode(v) for k, v in value["fields"].items()}
    return value


class _NbflowJsonCodec:
    @staticmethod
    def dump(value, file):
        file.write(_nbflow_json.dumps(_nbflow_encode(value), ensure_ascii=False).encode("utf-8"))

    @staticmethod
    def load(file):
        return _nbflow_decode(_nbflow_json.loads(file.read().decode("utf-8")))


def _nbflow_stop(spec, message):
    """End the run with nbflow's own error (not the function's), which the task fails with."""
    with open(spec["termination"], "w", encoding="utf-8") as file:
        file.write(message)
    _nbflow_sys.stderr.write("nbflow: " + message + "\n")
    _nbflow_sys.exit(1)


def _nbflow_main():
    with open(_nbflow_sys.argv[1], encoding="utf-8") as file:
        spec = _nbflow_json.load(file)
    serializer = spec["serializer"]
    if serializer == "json":
        codec = _NbflowJsonCodec
    else:
        try:
            codec = __import__(serializer)
        except ImportError:
            _nbflow_stop(spec, "serializer %r is not installed in %s; install %s there (or add it to "
                               "requirements) or use serializer='json' or 'pickle'"
                               % (serializer, _nbflow_sys.executable, serializer))
    try:
        with open(spec["input"], "rb") as file:
            call = codec.load(file)
    except Exception as err:
        _nbflow_stop(spec, "the arguments could not be read in %s: %s: %s"
                           % (_nbflow_sys.executable, type(err).__name__, err))
    with open(spec["string_args"], encoding="utf-8") as file:
        globals()["virtualenv_string_args"] = [line.strip() for line in file]  # Airflow's name for string_args
    with open(spec["source"], encoding="utf-8") as file:
        source = file.read()
    # Blank lines first, so tracebacks give the function's own file and line numbers.
    exec(compile("\n" * (spec["first_line"] - 1) + source, spec["filename"], "exec"), globals())
    try:
        result = globals()[spec["name"]](*call["args"], **call["kwargs"])
    except Exception as err:  # SystemExit passes: its code is the exit code (skip_on_exit_code)
        import traceback
        # From the function's frame down: the runner's own frames would only be noise in the task log.
        traceback.print_exception(type(err), err, err.__traceback__.tb_next)
        _nbflow_sys.exit(1)
    try:
        with open(spec["output"], "wb") as file:
            codec.dump(result, file)
    except Exception as err:
        _nbflow_stop(spec, "%s() returned a %s.%s, which serializer %r cannot write back: %s: %s"
                           % (spec["name"], type(result).__module__, type(result).__qualname__, serializer,
                              type(err).__name__, err))


if __name__ == "__main__":
    _nbflow_main()
'''


# --- the operators ---------------------------------------------------------------------------------

class _BasePythonVirtualenvOperator(PythonOperator):
    """Calls `python_callable` in another interpreter; subclasses say which (`_prepare_python`)."""

    def __init__(self, *, python_callable: Callable[..., Any], serializer: str | None = None,
                 op_args: Collection[Any] | None = None, op_kwargs: Mapping[str, Any] | None = None,
                 string_args: Iterable[str] | None = None, templates_dict: dict[str, Any] | None = None,
                 templates_exts: list[str] | None = None, expect_airflow: bool = True, expect_nbflow: bool = True,
                 skip_on_exit_code: int | Container[int] | None = None, env_vars: dict[str, str] | None = None,
                 inherit_env: bool = True, use_dill: bool = False, **kwargs: Any) -> None:
        super().__init__(python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs,
                         templates_dict=templates_dict, templates_exts=templates_exts, **kwargs)
        kind = type(self).__name__
        if not isinstance(python_callable, types.FunctionType) or python_callable.__name__ == "<lambda>":
            raise DagDefinitionError(f"{kind} {self.task_id!r}: python_callable must be a function defined with "
                                     f"`def` (it runs from its source), not {python_callable!r}")
        if inspect.iscoroutinefunction(python_callable) or inspect.isgeneratorfunction(python_callable):
            raise DagDefinitionError(f"{kind} {self.task_id!r}: {python_callable.__name__}() is async or a "
                                     f"generator; it must be a plain function that returns its result")
        if python_callable.__code__.co_freevars:
            raise DagDefinitionError(
                f"{kind} {self.task_id!r}: {python_callable.__name__}() uses "
                f"{', '.join(python_callable.__code__.co_freevars)} from an enclosing function, which does not "
                f"exist in the other interpreter; pass it through op_args/op_kwargs instead")
        serializer = "dill" if use_dill and serializer is None else (serializer or "json")
        if serializer not in SERIALIZERS:
            raise DagDefinitionError(f"{kind} {self.task_id!r}: serializer {serializer!r} is not one of: "
                                     f"{', '.join(SERIALIZERS)}")
        self.serializer = serializer
        self.string_args = list(string_args or [])
        # Accepted for Airflow's DAG files; the runner needs only the standard library in the other interpreter.
        self.expect_airflow = self.expect_nbflow = expect_airflow and expect_nbflow
        if skip_on_exit_code is None:
            self.skip_on_exit_code: Container[int] = ()
        elif isinstance(skip_on_exit_code, int):
            self.skip_on_exit_code = (skip_on_exit_code,)
        else:
            self.skip_on_exit_code = skip_on_exit_code
        self.env_vars = env_vars
        self.inherit_env = inherit_env
        self._process: subprocess.Popen[str] | None = None

    def _prepare_python(self, workdir: Path) -> str:
        """The interpreter to run the function in (created under `workdir` when it is temporary)."""
        raise NotImplementedError

    def execute(self, context: dict[str, Any]) -> Any:
        self._check_context_arguments(context)
        plain = {key: dict(value) if key == "params" and value is not None else value
                 for key, value in context.items() if key in SERIALIZABLE_CONTEXT_KEYS}
        return super().execute(plain)

    def _check_context_arguments(self, context: Mapping[str, Any]) -> None:
        """Fail clearly when the function asks for a context entry (ti, dag, ...) that cannot cross over."""
        params = list(inspect.signature(self.python_callable).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        given = {p.name for p in positional[:len(self.op_args)]} | set(self.op_kwargs)
        stuck = [p.name for p in params
                 if p.name in context and p.name not in SERIALIZABLE_CONTEXT_KEYS and p.name not in given
                 and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if stuck:
            raise NbflowFailException(
                f"task {self.task_id!r}: {self.python_callable.__name__}() takes the context entry "
                f"{', '.join(map(repr, stuck))}, which cannot be sent to another interpreter (plain-data "
                f"entries such as ds, ts, logical_date, run_id and params can); pass what it needs through "
                f"op_kwargs, e.g. a template such as \"{{{{ ti.xcom_pull('other') }}}}\"")

    def execute_callable(self, kwargs: dict[str, Any]) -> Any:
        source = function_source(self.python_callable, where=f"task {self.task_id!r}")
        with tempfile.TemporaryDirectory(prefix="nbflow-venv-") as tmp:
            workdir = Path(tmp)
            python = self._prepare_python(workdir)
            return self._run_function(python, workdir, source, kwargs)

    def _run_function(self, python: str, workdir: Path, source: FunctionSource, kwargs: dict[str, Any]) -> Any:
        spec = {"name": source.name, "filename": source.filename, "first_line": source.first_line,
                "serializer": self.serializer, **{name: str(workdir / name) for name in (
                    "source", "input", "output", "string_args", "termination")}}
        Path(spec["source"]).write_text(source.text, encoding="utf-8")
        Path(spec["input"]).write_bytes(self._dump({"args": list(self.op_args), "kwargs": kwargs}))
        Path(spec["string_args"]).write_text("".join(f"{arg}\n" for arg in self.string_args), encoding="utf-8")
        (workdir / "runner.py").write_text(_RUNNER, encoding="utf-8")
        (workdir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        print(f"Running {source.name}() in {python}")
        code, tail = _run_streaming([python, str(workdir / "runner.py"), str(workdir / "spec.json")],
                                    env=self._environment(), started=self._remember_process)
        self._process = None
        termination = Path(spec["termination"])
        if termination.exists():
            raise NbflowFailException(f"task {self.task_id!r}: {termination.read_text(encoding='utf-8')}")
        if code in self.skip_on_exit_code:
            raise NbflowSkipException(f"Process exited with code {code}. Skipping.")
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            raise NbflowException(f"task {self.task_id!r}: {source.name}() failed in {python} ({how}); the end of "
                                  f"its stderr:\n" + "\n".join(tail))
        output = Path(spec["output"])
        return self._load(output.read_bytes()) if output.exists() else None

    def _remember_process(self, process: subprocess.Popen[str]) -> None:
        self._process = process

    def on_kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ) if self.inherit_env else {}
        env.update(self.env_vars or {})
        env["PYTHONUNBUFFERED"] = "1"  # each line reaches the task log when printed, not when the buffer fills
        return env

    def _codec(self) -> Any:
        if self.serializer == "pickle":
            return pickle
        try:
            return importlib.import_module(self.serializer)
        except ImportError:
            raise NbflowFailException(f"task {self.task_id!r}: serializer {self.serializer!r} is not installed "
                                      f"where nbflow runs; `pip install {self.serializer}` or use "
                                      f"serializer='json' or 'pickle'") from None

    def _dump(self, payload: dict[str, Any]) -> bytes:
        if self.serializer != "json":
            return self._codec().dumps(payload)
        # An XComError (not retried) names the task and the type that JSON cannot carry.
        where = f"task {self.task_id!r}: op_args/op_kwargs with serializer='json' (or use 'pickle')"
        return serialize(payload, where=where).encode("utf-8")

    def _load(self, data: bytes) -> Any:
        if self.serializer == "json":
            return deserialize(data.decode("utf-8"))
        return self._codec().loads(data)


class PythonVirtualenvOperator(_BasePythonVirtualenvOperator):
    """Runs the function in a new virtualenv with `requirements` installed (cached under `venv_cache_path`)."""

    template_fields = ("requirements", "index_urls", "venv_cache_path", "templates_dict", "op_args", "op_kwargs")

    def __init__(self, *, python_callable: Callable[..., Any],
                 requirements: None | Iterable[str] | str = None, python_version: str | int | float | None = None,
                 system_site_packages: bool = True, pip_install_options: list[str] | None = None,
                 index_urls: None | Collection[str] | str = None, venv_cache_path: None | os.PathLike[str] | str = None,
                 **kwargs: Any) -> None:
        super().__init__(python_callable=python_callable, **kwargs)
        if not is_venv_installed():
            raise DagDefinitionError(f"PythonVirtualenvOperator {self.task_id!r}: no way to create a virtualenv "
                                     f"here; install uv or virtualenv")
        self.requirements = [requirements] if isinstance(requirements, str) else list(requirements or [])
        self.python_version = str(python_version) if python_version is not None else None
        self.system_site_packages = system_site_packages
        self.pip_install_options = list(pip_install_options or [])
        self.index_urls = [index_urls] if isinstance(index_urls, str) else (
            list(index_urls) if index_urls is not None else None)
        self.venv_cache_path = venv_cache_path
        self._requirements: list[str] = []

    def execute(self, context: dict[str, Any]) -> Any:
        self._requirements = self._requirements_list(context)
        return super().execute(context)

    def _requirements_list(self, context: Mapping[str, Any]) -> list[str]:
        """The requirement lines: files (`*.txt`, Airflow's template_ext) read and rendered, the serializer added."""
        lines: list[str] = []
        for item in self.requirements:
            text = str(item).strip()
            if text.endswith(".txt"):
                text = self._read_requirements_file(text, context)
            lines.extend(line.strip() for line in text.splitlines())
        lines = [line for line in lines if line and not line.startswith("#")]
        if self.serializer in ("cloudpickle", "dill") and self.serializer not in map(_requirement_name, lines):
            lines.append(self.serializer)  # the runner needs it to read the arguments
        return sorted(set(lines))  # sorted: the cache key must not depend on the order given

    def _read_requirements_file(self, name: str, context: Mapping[str, Any]) -> str:
        path = Path(name).expanduser()
        folders = [Path(self.dag.folder), *map(Path, self.dag.template_searchpath)] if self.has_dag else [Path.cwd()]
        found = path if path.is_absolute() else next((f / path for f in folders if (f / path).is_file()), None)
        if found is None or not found.is_file():
            raise NbflowFailException(f"task {self.task_id!r}: requirements file {name!r} was not found "
                                      f"{'' if path.is_absolute() else 'in ' + ', '.join(map(str, folders))}; "
                                      f"give an absolute path or put it next to the DAG file")
        text = found.read_text(encoding="utf-8")
        return self.render_template(text, dict(context)) if self.has_dag else text

    def _prepare_python(self, workdir: Path) -> str:
        try:
            if self.venv_cache_path:
                return self._cached_virtualenv(Path(self.venv_cache_path).expanduser())
            return self._create(workdir / "venv")
        except NbflowFailException:
            raise
        except NbflowException as err:
            raise NbflowException(f"task {self.task_id!r}: {err}") from err

    def _create(self, venv_dir: Path) -> str:
        return prepare_virtualenv(venv_dir, python=self.python_version, system_site_packages=self.system_site_packages,
                                  requirements=self._requirements, pip_install_options=self.pip_install_options,
                                  index_urls=self.index_urls)

    def _cache_key(self) -> dict[str, Any]:
        python = self.python_version or ".".join(map(str, sys.version_info[:3]))
        return {"python": python, "requirements": self._requirements,
                "system_site_packages": self.system_site_packages,
                "pip_install_options": self.pip_install_options, "index_urls": self.index_urls}

    def _cached_virtualenv(self, cache_root: Path) -> str:
        """A virtualenv under `cache_root` named by a hash of what it holds; created once, then reused."""
        key = self._cache_key()
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        venv_dir = cache_root / f"venv-{digest}"
        marker, python = venv_dir / VENV_MARKER, venv_dir / "bin" / "python"
        cache_root.mkdir(parents=True, exist_ok=True)
        with open(cache_root / f"venv-{digest}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # tasks on this machine wanting the same venv wait; released on close
            if python.exists() and _read_marker(marker) == key:
                print(f"Using the cached virtualenv {venv_dir}")
                return str(python)
            if venv_dir.exists():
                print(f"Removing {venv_dir}: a run that was creating it did not finish")
                shutil.rmtree(venv_dir)
            self._create(venv_dir)
            marker.write_text(json.dumps(key, indent=2, sort_keys=True), encoding="utf-8")
        return str(python)


def _read_marker(marker: Path) -> Any:
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class ExternalPythonOperator(_BasePythonVirtualenvOperator):
    """Runs the function in an existing interpreter, `python` (e.g. another virtualenv's bin/python)."""

    template_fields = ("python", "templates_dict", "op_args", "op_kwargs")

    def __init__(self, *, python: str, python_callable: Callable[..., Any], expect_pendulum: bool = False,
                 **kwargs: Any) -> None:
        if not python:
            raise DagDefinitionError(f"ExternalPythonOperator {kwargs.get('task_id')!r}: python= must name the "
                                     f"interpreter to run the function in, e.g. /opt/venvs/etl/bin/python")
        super().__init__(python_callable=python_callable, **kwargs)
        self.python = python
        self.expect_pendulum = expect_pendulum

    def _prepare_python(self, workdir: Path) -> str:
        given = str(self.python)
        path = Path(given).expanduser() if os.sep in given else Path(shutil.which(given) or given)
        if not path.exists():
            raise NbflowFailException(f"task {self.task_id!r}: python {given!r} does not exist; give the path of "
                                      f"an installed interpreter, e.g. /opt/venvs/etl/bin/python")
        if not path.is_file() or not os.access(path, os.X_OK):
            raise NbflowFailException(f"task {self.task_id!r}: python {given!r} is not an executable file; give "
                                      f"the path of an interpreter, e.g. /opt/venvs/etl/bin/python")
        return str(path)


# --- TaskFlow kinds --------------------------------------------------------------------------------

class _PythonVirtualenvDecoratedOperator(DecoratedOperator, PythonVirtualenvOperator):
    template_fields = PythonVirtualenvOperator.template_fields
    custom_operator_name = "@task.virtualenv"
    kwargs_to_upstream = ("python_callable", "op_args", "op_kwargs")


class _ExternalPythonDecoratedOperator(DecoratedOperator, ExternalPythonOperator):
    template_fields = ExternalPythonOperator.template_fields
    custom_operator_name = "@task.external_python"
    kwargs_to_upstream = ("python_callable", "op_args", "op_kwargs")


def virtualenv_task(python_callable: Callable[..., Any] | None = None, multiple_outputs: bool | None = None,
                    **kwargs: Any) -> Any:
    """`@task.virtualenv(requirements=[...])`: the function runs in a new virtualenv; imports go inside it."""
    return task_decorator_factory(python_callable, decorated_operator_class=_PythonVirtualenvDecoratedOperator,
                                  multiple_outputs=multiple_outputs, **kwargs)


def external_python_task(python: str | None = None, python_callable: Callable[..., Any] | None = None,
                         multiple_outputs: bool | None = None, **kwargs: Any) -> Any:
    """`@task.external_python(python="/path/to/bin/python")`: the function runs in that interpreter."""
    if callable(python):
        raise DagDefinitionError(f"@task.external_python on {python.__name__}() needs the interpreter: "
                                 f"@task.external_python(python='/path/to/bin/python')")
    return task_decorator_factory(python_callable, decorated_operator_class=_ExternalPythonDecoratedOperator,
                                  multiple_outputs=multiple_outputs, python=python, **kwargs)


task_decorators.add("virtualenv", virtualenv_task)
task_decorators.add("external_python", external_python_task)
