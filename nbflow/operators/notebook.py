"""NotebookOperator (alias PapermillOperator): run a parameterised Jupyter notebook as a task.

Parameters are injected by papermill's conventions (a new cell tagged `injected-parameters` after
the cell tagged `parameters`, or first); each attempt's executed notebook is kept at
`$NBFLOW_HOME/notebooks/dag_id=D/run_id=R/task_id=T/attempt=N.ipynb`; each cell's outputs reach the
attempt's log as they happen; the XCom is what the notebook `nbflow.notebook.record()`ed, plus
`output_notebook`. The kernel comes from a pool of fresh kernels the runtime keeps and is
stopped after this one notebook.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.exceptions import (
    KernelNotFound,
    KernelStartError,
    NotebookCellError,
    NotebookDefinitionError,
    NotebookNotFound,
    NotebookParameterError,
    NotebookUnreadable,
    NbflowTaskTimeout,
)
from nbflow.utils.masking import masker
from nbflow.utils.timezone import parse_duration

_safe = str.maketrans({"/": "_", ":": "_", "\\": "_"})  # as in log paths: a run id is one folder name
_notebook_kernels: dict[tuple[str, float], str | None] = {}  # (path, mtime) -> kernelspec name, for hints


class NotebookOperator(BaseOperator):
    """Execute `input_nb` with `parameters` in a fresh kernel; XCom: what it record()ed + output_notebook.

    input_nb: absolute, or relative to the DAG file's folder, then to core.notebooks_folder.
    output_nb: where the executed copy goes (relative: under $NBFLOW_HOME/notebooks); default one file
        per attempt. parameters: injected values; strings are templates (`{{ ds }}`, `{{ ti.xcom_pull(...) }}`),
        an XComArg (`extract.output["path"]`) arrives with its type. kernel_name / language: override the
        notebook's own. cwd: the kernel's working directory (default: the notebook's folder, as in Jupyter).
    cell_timeout: seconds one cell may run (execution_timeout bounds the whole notebook). report_mode:
        hide the code in the executed copy. allow_errors: run every cell even after errors and succeed.
    """

    template_fields = ("input_nb", "output_nb", "parameters", "kernel_name", "language", "cwd")
    template_fields_renderers = {"parameters": "json"}
    ui_color = "#f3e7d9"

    def __init__(self, *, input_nb: str | os.PathLike[str], output_nb: str | os.PathLike[str] | None = None,
                 parameters: dict[str, Any] | None = None, kernel_name: str | None = None,
                 language: str | None = None, cwd: str | os.PathLike[str] | None = None,
                 cell_timeout: float | timedelta | None = None, start_timeout: float = 60.0,
                 report_mode: bool = False, allow_errors: bool = False, multiple_outputs: bool = True,
                 language_name: str | None = None, nb_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=multiple_outputs, **kwargs)
        if not input_nb:
            raise NotebookDefinitionError(f"task {self.task_id!r}: input_nb is required")
        if parameters is not None and not isinstance(parameters, dict):
            raise NotebookParameterError(f"task {self.task_id!r}: parameters must be a dict of name -> value, "
                                         f"got {type(parameters).__name__}")
        self.input_nb = str(input_nb)
        self.output_nb = str(output_nb) if output_nb is not None else None
        self.parameters = dict(parameters or {})
        self.kernel_name = kernel_name
        self.language = language or language_name  # language_name: Airflow's PapermillOperator argument
        self.cwd = str(cwd) if cwd is not None else None
        timeout = cell_timeout if cell_timeout is not None else nb_timeout  # nb_timeout: Airflow's name
        delta = parse_duration(timeout)
        self.cell_timeout = delta.total_seconds() if delta is not None else None
        self.start_timeout = float(start_timeout)
        self.report_mode = report_mode
        self.allow_errors = allow_errors

    # -- where things are ---------------------------------------------------------------------
    def notebook_candidates(self, name: str, notebooks_folder: Path) -> list[Path]:
        path = Path(name).expanduser()
        if path.is_absolute():
            return [path]
        folders = [Path(self.dag.folder)] if self.has_dag else []
        return [folder / path for folder in [*folders, notebooks_folder]]

    def resolve_notebook(self, name: str, notebooks_folder: Path) -> Path:
        candidates = self.notebook_candidates(name, notebooks_folder)
        for candidate in candidates:
            if candidate.is_file():
                return candidate.resolve()
        raise NotebookNotFound(self.task_id, name, [str(c) for c in candidates])

    def default_output(self, context: dict[str, Any], folder: Path) -> Path:
        ti = context["ti"]
        path = folder / f"dag_id={self.dag_id}" / f"run_id={str(context['run_id']).translate(_safe)}" / \
            f"task_id={self.task_id}"
        if getattr(ti, "map_index", -1) >= 0:
            path = path / f"map_index={ti.map_index}"
        return path / f"attempt={ti.try_number}.ipynb"

    def kernel_wanted(self, notebooks_folder: Path) -> str | None:
        """The kernel this task will ask for, when it is known before templates render (for the worker's
        pool to start one ahead); None when it depends on a template or the notebook cannot be read."""
        if self.kernel_name:
            return None if "{{" in self.kernel_name else self.kernel_name
        if "{{" in self.input_nb:
            return None
        try:
            path = self.resolve_notebook(self.input_nb, notebooks_folder)
            key = (str(path), path.stat().st_mtime)
        except (NotebookNotFound, OSError):
            return None
        if key not in _notebook_kernels:
            try:
                metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
                _notebook_kernels[key] = (metadata.get("kernelspec") or {}).get("name") or "python3"
            except (OSError, ValueError, AttributeError):
                _notebook_kernels[key] = None
        return _notebook_kernels[key]

    # -- running ------------------------------------------------------------------------------
    def execute(self, context: dict[str, Any]) -> dict[str, Any]:
        from nbflow.configuration import load_config
        config = load_config()
        notebooks_folder = config.path("core", "notebooks_folder")
        output_root = config.path("notebook", "output_folder") if config.get("notebook", "output_folder") \
            else config.home / "notebooks"
        started = time.monotonic()

        input_path = self.resolve_notebook(self.input_nb, notebooks_folder)
        output_path = (output_root / Path(self.output_nb).expanduser()) if self.output_nb \
            else self.default_output(context, output_root)
        cwd = Path(self.cwd).expanduser() if self.cwd else input_path.parent
        if not cwd.is_dir():
            raise NotebookDefinitionError(f"task {self.task_id!r}: cwd {str(cwd)!r} is not a folder")
        check_parameters(self.task_id, self.parameters)
        for name, value in self.parameters.items():  # e.g. api_token: masked in the log and the executed copy
            masker.add_if_sensitive(name, value)
        nb = self._read_notebook(input_path)
        spec = self._kernel_spec(nb, input_path)
        nb = self._parameterize(nb, spec.name, input_path, output_path)

        from nbflow.operators.notebook_kernels import kernel_folder, kernel_source, launch_kernel
        from nbflow.operators.notebook_run import DeadlineReached, RunSettings, run_notebook
        source = kernel_source(config.getint("notebook", "kernel_pool_size"))
        env = self._kernel_env(context)
        handed = source.take(spec) if source is not None and spec.poolable else None
        own_folder = None if handed is not None else kernel_folder()
        own = None if own_folder is None else launch_kernel(spec, own_folder, cwd=str(cwd), env=env)
        kernel = handed or own.kernel  # type: ignore[union-attr]
        print(f"[nbflow] notebook {input_path}\n[nbflow] executed copy: {output_path}\n"
              f"[nbflow] kernel {spec.name} (pid {kernel.pid}, {'pre-started' if handed else 'started now'})",
              flush=True)
        timeout = self.execution_timeout.total_seconds() if self.execution_timeout else None
        settings = RunSettings(output_path=output_path, cwd=str(cwd), env=env, log=_LogWriter(),
                               cell_timeout=self.cell_timeout, allow_errors=self.allow_errors,
                               deadline=_own_deadline(timeout, started), start_timeout=self.start_timeout)
        try:
            result = run_notebook(nb, kernel, settings, alive=own.alive if own is not None else None)
        except KernelStartError as err:
            raise KernelStartError(f"task {self.task_id!r}: {err}") from err
        except DeadlineReached as err:
            raise NbflowTaskTimeout(f"task {self.task_id!r} timed out after {timeout:g} s (execution_timeout): "
                                    f"{err}") from err
        finally:
            if own is not None:
                own.stop_and_wait()
                shutil.rmtree(own_folder, ignore_errors=True)  # type: ignore[arg-type]
            elif source is not None:
                source.release(kernel)
        failure = result.failure
        if result.deadline_reached and failure is not None:
            raise NbflowTaskTimeout(f"task {self.task_id!r} timed out after {timeout:g} s (execution_timeout) at "
                                    f"cell {failure.cell_index} (In [{failure.execution_count}]) of notebook "
                                    f"{input_path}; the executed notebook is {output_path}")
        if failure is not None and not self.allow_errors:
            raise NotebookCellError(self.task_id, str(input_path), failure.cell_index, failure.execution_count,
                                    failure.ename, failure.evalue, str(output_path))
        print(f"[nbflow] notebook finished in {time.monotonic() - started:.2f} s; recorded: "
              f"{', '.join(result.records) or 'nothing'}", flush=True)
        return {**result.records, "output_notebook": str(output_path)}

    def _read_notebook(self, path: Path) -> Any:
        import nbformat
        try:
            nb = nbformat.read(str(path), as_version=4)
            nbformat.validate(nb)
        except (OSError, UnicodeDecodeError) as err:
            raise NotebookUnreadable(f"task {self.task_id!r}: cannot read notebook {path}: {err}") from err
        except Exception as err:  # noqa: BLE001 - JSON errors and nbformat's validation errors
            problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise NotebookUnreadable(f"task {self.task_id!r}: {path} is not a Jupyter notebook nbformat can read "
                                     f"({problem}); open and save it in Jupyter, or check the file") from err
        nb.metadata.setdefault("papermill", {"default_parameters": {}, "parameters": {},
                                             "environment_variables": {}})
        for cell in nb.cells:
            cell.metadata.setdefault("tags", [])
        return nb

    def _kernel_spec(self, nb: Any, path: Path) -> Any:
        from nbflow.operators.notebook_kernels import find_kernel_spec, known_kernel_names
        name = self.kernel_name or (nb.metadata.get("kernelspec") or {}).get("name")
        where = "kernel_name" if self.kernel_name else f"the kernelspec of {path.name}"
        if not name:
            language = self.language or (nb.metadata.get("language_info") or {}).get("name") or "python"
            if language != "python":
                raise KernelNotFound(self.task_id, f"<none for {language}>", known_kernel_names(),
                                     f"{path.name} names no kernel; pass kernel_name=")
            name, where = "python3", f"{path.name} names no kernel, python3 assumed"
        spec = find_kernel_spec(name)
        if spec is None:
            raise KernelNotFound(self.task_id, name, known_kernel_names(), where)
        return spec

    def _parameterize(self, nb: Any, kernel_name: str, input_path: Path, output_path: Path) -> Any:
        from papermill.execute import prepare_notebook_metadata, remove_error_markers
        from papermill.parameterize import parameterize_notebook
        from papermill.utils import find_first_tagged_cell_index
        if self.parameters:
            if find_first_tagged_cell_index(nb, "parameters") < 0:
                print("[nbflow] the notebook has no cell tagged 'parameters': parameters go into a new first cell")
            nb = parameterize_notebook(nb, self.parameters, self.report_mode, kernel_name=kernel_name,
                                       language=self.language)
        nb = prepare_notebook_metadata(nb, str(input_path), str(output_path), self.report_mode)
        return remove_error_markers(nb)

    def _kernel_env(self, context: dict[str, Any]) -> dict[str, str]:
        ti, dag_run = context.get("ti"), context.get("dag_run")
        env = dict(os.environ)
        env.update({
            "NBFLOW_CTX_DAG_ID": self.dag_id, "NBFLOW_CTX_TASK_ID": self.task_id,
            "NBFLOW_CTX_RUN_ID": str(context.get("run_id", "")),
            "NBFLOW_CTX_LOGICAL_DATE": str(context.get("logical_date", "") or ""),
            "NBFLOW_CTX_TRY_NUMBER": str(getattr(ti, "try_number", 1)),
            "NBFLOW_CTX_DAG_RUN_ID": str(getattr(dag_run, "run_id", "")),
        })
        return env


PapermillOperator = NotebookOperator


def check_parameters(task_id: str, parameters: dict[str, Any]) -> None:
    """Every parameter must be a name papermill can assign and a value it can write as a literal."""
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise NotebookParameterError(f"task {task_id!r}: parameter name {name!r} is not a valid variable "
                                         f"name; use letters, digits and _")
        problem = _unwritable(value)
        if problem:
            raise NotebookParameterError(f"task {task_id!r}: parameter {name!r} {problem}, which cannot be written "
                                         f"into the notebook; pass str, int, float, bool, None, or lists and dicts "
                                         f"of them (e.g. str(value), value.isoformat())")


def _unwritable(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is {value!r}"
    if isinstance(value, (list, tuple)):
        return next((p for p in map(_unwritable, value) if p), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has a dict key of type {type(key).__name__} (keys must be strings)"
            problem = _unwritable(item)
            if problem:
                return problem
        return None
    return f"is a {type(value).__module__}.{type(value).__qualname__}"


class _LogWriter:
    """Writes to whatever sys.stdout is when called: the attempt's masked log while the task runs."""

    def write(self, text: str) -> int:
        import sys
        sys.stdout.write(text)
        sys.stdout.flush()
        return len(text)

    def flush(self) -> None:
        import sys
        sys.stdout.flush()


ALARM_GRACE = 5.0  # seconds the runner's execution_timeout alarm is postponed; see _own_deadline


def _own_deadline(timeout: float | None, started: float) -> float | None:
    """When the notebook must end (time.monotonic()), for execution_timeout to stop it between messages.

    The task runner enforces execution_timeout with SIGALRM, which raises wherever the main thread is,
    possibly inside the kernel client's event loop or ZMQ. This deadline ends the notebook cleanly a
    little earlier, naming the cell; the alarm, postponed by ALARM_GRACE, stays as the backstop.
    """
    if not timeout:
        return None
    if threading.current_thread() is threading.main_thread():
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        if remaining > 0:
            signal.setitimer(signal.ITIMER_REAL, remaining + ALARM_GRACE)
            return time.monotonic() + remaining
    return started + timeout
