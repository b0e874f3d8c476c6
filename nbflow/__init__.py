"""nbflow: Airflow's model, at home in Jupyter. `from nbflow import DAG`.

Names are resolved lazily so that `import nbflow` stays fast (no Jinja, SQLAlchemy or croniter).
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "DAG": ("nbflow.authoring.dag", "DAG"),
    "dag": ("nbflow.authoring.dag", "dag"),
    "task": ("nbflow.decorators", "task"),
    "BaseOperator": ("nbflow.authoring.baseoperator", "BaseOperator"),
    "TaskGroup": ("nbflow.authoring.taskgroup", "TaskGroup"),
    "Param": ("nbflow.authoring.params", "Param"),
    "NbflowException": ("nbflow.exceptions", "NbflowException"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'nbflow' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext nbflow`: registers the magics (imported here, never at `import nbflow`)."""
    try:
        from nbflow.jupyter.magics import register
    except ModuleNotFoundError as err:
        if err.name is None or not err.name.startswith("nbflow.jupyter"):
            raise
        from nbflow.exceptions import NbflowException
        raise NbflowException(f"nbflow {__version__} has no notebook magics yet; define DAGs in .py files under "
                              "core.dags_folder and run them with `nbflow dags test` or `nbflow scheduler`") from None
    register(ipython)
