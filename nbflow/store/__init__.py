"""The metadata database: tables, engines and sessions, migrations, and repository functions.

Importing this package opens no database, reads no configuration and starts no thread.
Repository functions live in small modules (`dags`, `runs`, `task_instances`, `ti_state`,
`xcoms`, `pools`, `jobs`, `connections`); each takes the caller's Session first and never
commits. Schema management is in `nbflow.store.migrate` (imported on demand: it loads Alembic).
"""
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
from nbflow.store.states import DagRunState as DagRunState
from nbflow.store.states import DagRunType as DagRunType
from nbflow.store.states import TaskInstanceState as TaskInstanceState
