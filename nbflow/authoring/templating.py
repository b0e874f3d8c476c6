"""Jinja2 rendering of template fields with Airflow's context, macros and template files."""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import TemplateRenderError

if TYPE_CHECKING:
    import jinja2

    from nbflow.authoring.dag import DAG


def ds_add(ds: str, days: int) -> str:
    """Add or subtract days from a YYYY-MM-DD string."""
    return (dt.date.fromisoformat(ds) + dt.timedelta(days=days)).isoformat()


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Re-format a date string: ds_format('2015-01-01', '%Y-%m-%d', '%m-%d-%y')."""
    return dt.datetime.strptime(str(ds), input_format).strftime(output_format)


def datetime_diff_for_humans(then: dt.datetime, since: dt.datetime | None = None) -> str:
    delta = (since or dt.datetime.now(dt.timezone.utc)) - then
    seconds = int(abs(delta.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''} {'ago' if delta.total_seconds() > 0 else 'from now'}"
    return "just now"


class _Macros:
    """`{{ macros.ds_add(ds, 1) }}`, `{{ macros.datetime }}`, ... as in Airflow."""

    datetime = dt.datetime
    timedelta = dt.timedelta
    date = dt.date
    time = time
    uuid = uuid
    json = json
    ds_add = staticmethod(ds_add)
    ds_format = staticmethod(ds_format)
    datetime_diff_for_humans = staticmethod(datetime_diff_for_humans)

    @property
    def dateutil(self) -> Any:
        import dateutil
        import dateutil.relativedelta  # noqa: F401
        return dateutil

    @property
    def random(self) -> Any:
        import random
        return random.random


macros = _Macros()
_extra_macros: dict[str, Any] = {}


def register_macro(name: str, value: Any) -> None:
    """Plugins add template macros here: `{{ macros.<name> }}`."""
    _extra_macros[name] = value
    setattr(_Macros, name, staticmethod(value) if callable(value) else value)


def make_template_env(dag: "DAG | None") -> "jinja2.Environment":
    """The Jinja environment of a DAG: its folder and template_searchpath, strict undefined, its macros."""
    import jinja2
    import jinja2.nativetypes
    import jinja2.sandbox

    searchpath = [dag.folder, *dag.template_searchpath] if dag is not None else ["."]
    kwargs: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(searchpath),
        "undefined": (dag.template_undefined if dag is not None and dag.template_undefined else jinja2.StrictUndefined),
        "extensions": ["jinja2.ext.do"],
        "cache_size": 0,
        "keep_trailing_newline": True,
    }
    if dag is not None:
        kwargs.update(dag.jinja_environment_kwargs)
    native = dag is not None and dag.render_template_as_native_obj
    env_cls = jinja2.nativetypes.NativeEnvironment if native else jinja2.sandbox.SandboxedEnvironment
    env = env_cls(**kwargs)
    env.filters.update({
        "ds": lambda d: d.strftime("%Y-%m-%d"),
        "ds_nodash": lambda d: d.strftime("%Y%m%d"),
        "ts": lambda d: d.isoformat(),
        "ts_nodash": lambda d: d.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": lambda d: d.isoformat().replace("-", "").replace(":", ""),
    })
    if dag is not None:
        env.filters.update(dag.user_defined_filters)
        env.globals.update(dag.user_defined_macros)
    return env


# Jinja options that leave text outside {{ }}, {% %} and {# #} as it is. A DAG setting any other option
# (delimiters, line statements, newline handling, extensions) renders every string through Jinja.
_LITERAL_SAFE_OPTIONS = frozenset({"undefined", "finalize", "autoescape", "loader", "cache_size", "auto_reload",
                                   "bytecode_cache", "trim_blocks", "lstrip_blocks", "optimized"})
_PLAIN_EXTENSIONS = frozenset({"jinja2.ext.ExprStmtExtension"})  # `do`: a tag, nothing outside tags


def _dag_passes_literals(dag: "DAG | None") -> bool:
    """Whether the environment make_template_env builds for `dag` renders a string without syntax to itself."""
    if dag is None:
        return True
    return not dag.render_template_as_native_obj and _LITERAL_SAFE_OPTIONS.issuperset(dag.jinja_environment_kwargs)


def _env_passes_literals(env: "jinja2.Environment") -> bool:
    """The same question asked of an environment the caller built."""
    import jinja2.nativetypes
    return (not isinstance(env, jinja2.nativetypes.NativeEnvironment)  # it would literal_eval "1" into 1
            and (env.block_start_string, env.variable_start_string, env.comment_start_string) == ("{%", "{{", "{#")
            and env.line_statement_prefix is None and env.line_comment_prefix is None
            and env.newline_sequence == "\n" and env.keep_trailing_newline
            and _PLAIN_EXTENSIONS.issuperset(env.extensions))


class _LazyEnv:
    """The Jinja environment of one rendering, built only when a value holds template syntax: a worker's
    forked attempt would otherwise build its DAG's environment (~50 µs) for tasks whose fields are plain."""

    __slots__ = ("_task", "_env", "_literals")

    def __init__(self, task: Any, env: "jinja2.Environment | None" = None) -> None:
        self._task, self._env = task, env
        self._literals: bool | None = None

    def get(self) -> "jinja2.Environment":
        if self._env is None:
            task = self._task
            self._env = task.dag.get_template_env() if task.has_dag else make_template_env(None)
        return self._env

    def renders_to_itself(self, text: str) -> bool:
        """True when Jinja would give `text` back unchanged: no template syntax, no carriage return (Jinja
        writes newlines as newline_sequence), and an environment that keeps literal text as it is."""
        if "\r" in text or ("{" in text and ("{{" in text or "{%" in text or "{#" in text)):
            return False
        if self._literals is None:
            self._literals = (_env_passes_literals(self._env) if self._env is not None
                              else _dag_passes_literals(self._task.dag if self._task.has_dag else None))
        return self._literals


def render_fields(task: Any, context: Mapping[str, Any], jinja_env: "jinja2.Environment | None" = None) -> None:
    """Render each of task.template_fields in place."""
    fields = task.template_fields
    if not fields:
        return
    env = _LazyEnv(task, jinja_env)
    for field in fields:
        value = getattr(task, field)
        if value is None:
            continue
        setattr(task, field, _render(task, field, value, context, env))


def render_value(task: Any, field: str, value: Any, context: Mapping[str, Any],
                 env: "jinja2.Environment") -> Any:
    """Render a value, recursing into containers; XComArgs resolve to their pulled values."""
    return _render(task, field, value, context, _LazyEnv(task, env))


def _render(task: Any, field: str, value: Any, context: Mapping[str, Any], env: _LazyEnv) -> Any:
    if hasattr(value, "resolve") and hasattr(value, "_is_xcom_arg"):
        return value.resolve(context)
    if isinstance(value, str):
        if type(value) is str and env.renders_to_itself(value) and not _names_template_file(task, value):
            return value
        return _render_text(task, field, value, context, env.get())
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(_render(task, field, v, context, env) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_render(task, field, v, context, env) for v in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(_render(task, field, v, context, env) for v in value)
    if isinstance(value, dict):
        return {k: _render(task, field, v, context, env) for k, v in value.items()}
    nested = getattr(value, "template_fields", None)
    if nested and not hasattr(value, "_is_task_node"):
        for name in nested:
            setattr(value, name, _render(task, f"{field}.{name}", getattr(value, name), context, env))
    return value


def _names_template_file(task: Any, text: str) -> bool:
    return any(text.endswith(ext) for ext in task.template_ext)


def _render_text(task: Any, field: str, value: str, context: Mapping[str, Any], env: "jinja2.Environment") -> Any:
    import jinja2

    try:
        if _names_template_file(task, value):
            template = _load_template_file(task, field, value, env)
        else:
            template = env.from_string(value)
        return template.render(**context)
    except TemplateRenderError:
        raise
    except jinja2.UndefinedError as err:
        raise TemplateRenderError(f"task {task.task_id!r}: template field {field!r}: {err.message}; "
                                  f"it is not in the task context, params or macros") from None
    except jinja2.TemplateSyntaxError as err:
        raise TemplateRenderError(f"task {task.task_id!r}: template field {field!r} has a syntax error at "
                                  f"line {err.lineno}: {err.message}") from None
    except Exception as err:  # noqa: BLE001 - any error in user template code
        raise TemplateRenderError(f"task {task.task_id!r}: template field {field!r} failed to render: "
                                  f"{type(err).__name__}: {err}") from err


def _load_template_file(task: Any, field: str, name: str, env: "jinja2.Environment") -> Any:
    import jinja2
    path = Path(name)
    try:
        if path.is_absolute():
            return env.from_string(path.read_text(encoding="utf-8"))
        return env.get_template(name)
    except (jinja2.TemplateNotFound, FileNotFoundError):
        where = getattr(env.loader, "searchpath", [])
        raise TemplateRenderError(f"task {task.task_id!r}: template field {field!r}: template file {name!r} "
                                  f"was not found in {', '.join(map(str, where)) or 'the DAG folder'}") from None
