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
    from nbflow.jupyter.magics import register

    register(ipython)
