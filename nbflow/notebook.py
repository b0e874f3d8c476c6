"""What a notebook run by a NotebookOperator imports: `record(name, value)`, Connection and Variable.

    from nbflow.notebook import record, Variable
    record("rows", len(df))      # the task's XCom becomes {"rows": ..., "output_notebook": ...}

`record` publishes a display output with its own MIME type: it travels from the kernel to the task
with the cell's other outputs (no side file, works in any kernel that can publish display data) and
stays in the executed notebook, where it reads "recorded rows = 42". Outside a kernel it only keeps
the value in `recorded`. Importing this module is light: the secrets chain loads on first use.
"""
from __future__ import annotations

import json
from typing import Any

RECORD_MIME = "application/vnd.nbflow.record+json"
SECRET_MIME = "application/vnd.nbflow.secret+json"  # a secret the kernel learned; the task masks it
RESERVED_NAMES = frozenset({"output_notebook"})

recorded: dict[str, Any] = {}

__all__ = ["Connection", "Variable", "record", "recorded"]


def record(name: str, value: Any) -> None:
    """Make `value` part of this notebook task's XCom under `name` (a later record of a name wins).

    Values are what an XCom holds: JSON data, datetimes, dates, timedeltas, sets, tuples, dataclasses.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"record(): name must be a non-empty string, got {name!r}")
    if name in RESERVED_NAMES:
        raise ValueError(f"record(): {name!r} is set by nbflow itself; pick another name")
    from nbflow.exceptions import XComError
    from nbflow.utils.serialization import serialize
    try:
        payload = json.loads(serialize(value, where=f"record({name!r})"))
    except XComError as err:
        raise TypeError(str(err)) from None
    recorded[name] = value
    shell = _shell()
    if shell is None:
        return
    from IPython.display import publish_display_data
    text = repr(value)
    if len(text) > 200:
        text = text[:197] + "..."
    publish_display_data({RECORD_MIME: {"name": name, "value": payload}, "text/plain": f"recorded {name} = {text}"})


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def _report_secrets_to_task() -> None:
    """Called in the kernel before a task's cells run: every secret the kernel's masker learns from now
    on (a Connection's password, a sensitive Variable) is sent to the task, which masks it in the log
    and the executed notebook and never stores it. The masker has no listeners, hence the wrapper."""
    from nbflow.utils.masking import masker
    if getattr(masker.add, "_nbflow_reports", False):
        return
    original = masker.add

    def add(secret: Any) -> None:
        original(secret)  # recurses through this wrapper for the items of a dict or list
        if _shell() is None or secret is None or isinstance(secret, (dict, list, tuple, set)):
            return
        try:
            payload = json.loads(json.dumps(secret, default=str))
        except (TypeError, ValueError):
            payload = str(secret)
        from IPython.display import publish_display_data
        publish_display_data({SECRET_MIME: {"value": payload}})

    add._nbflow_reports = True  # type: ignore[attr-defined]
    masker.add = add  # type: ignore[method-assign]


def __getattr__(name: str) -> Any:
    if name in ("Connection", "Variable"):
        import nbflow.secrets
        return getattr(nbflow.secrets, name)
    raise AttributeError(f"module 'nbflow.notebook' has no attribute {name!r}")
