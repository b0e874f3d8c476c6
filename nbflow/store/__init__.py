"""The metadata database: tables, engines and sessions, migrations, and repository functions.

Importing this package opens no database, reads no configuration and starts no thread.
Repository functions live in small modules (`dags`, `runs`, `task_instances`, `ti_state`,
`xcoms`, `pools`, `jobs`, `connections`); each takes the caller's Session first and never
commits. Schema management is in `nbflow.store.migrate` (imported on demand: it loads Alembic).
"""

# Names resolve on first use: `nbflow.store.keys` (TIKey, shared with the runtime) must not pull in
# SQLAlchemy, which costs ~0.3 s of every `nbflow dags test` that never touches the database.
from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "dispose_after_fork": "nbflow.store.engine",
    "make_engine": "nbflow.store.engine",
    "make_session_factory": "nbflow.store.engine",
    "retry_on_locked": "nbflow.store.engine",
    "safe_url": "nbflow.store.engine",
    "session_scope": "nbflow.store.engine",
    "TaskSpec": "nbflow.store.keys",
    "TIKey": "nbflow.store.keys",
    "DagRow": "nbflow.store.rows",
    "DagRunRow": "nbflow.store.rows",
    "JobRow": "nbflow.store.rows",
    "PoolRow": "nbflow.store.rows",
    "TaskInstanceRow": "nbflow.store.rows",
    "XComRow": "nbflow.store.rows",
    "DagRunState": "nbflow.utils.state",
    "DagRunType": "nbflow.utils.state",
    "TaskInstanceState": "nbflow.utils.state",
}

if TYPE_CHECKING:
    from nbflow.store.engine import dispose_after_fork as dispose_after_fork
    from nbflow.store.engine import make_engine as make_engine
    from nbflow.store.engine import make_session_factory as make_session_factory
    from nbflow.store.engine import retry_on_locked as retry_on_locked
    from nbflow.store.engine import safe_url as safe_url
    from nbflow.store.engine import session_scope as session_scope
    from nbflow.store.keys import TaskSpec as TaskSpec
    from nbflow.store.keys import TIKey as TIKey
    from nbflow.store.rows import DagRow as DagRow
    from nbflow.store.rows import DagRunRow as DagRunRow
    from nbflow.store.rows import JobRow as JobRow
    from nbflow.store.rows import PoolRow as PoolRow
    from nbflow.store.rows import TaskInstanceRow as TaskInstanceRow
    from nbflow.store.rows import XComRow as XComRow
    from nbflow.utils.state import DagRunState as DagRunState
    from nbflow.utils.state import DagRunType as DagRunType
    from nbflow.utils.state import TaskInstanceState as TaskInstanceState


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:  # also lets `from nbflow.store import runs` import the submodule
        raise AttributeError(f"module 'nbflow.store' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
