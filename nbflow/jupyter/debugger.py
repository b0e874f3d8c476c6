"""`%dag debug`: step into an ended attempt with its real inputs, in the kernel's own namespace.

The runtime rebuilds the attempt (runtime/post_mortem.py); this module binds what it found to names the
task's code uses (upstream task ids, `context`, a callable's arguments, a notebook's parameters), shows
the code (into the next cell when it can be run there) and the end of the attempt's log. `--retry`
clears the instance in its run so a scheduler runs it again, with the task as the kernel defines it now.
"""
from __future__ import annotations

import contextlib
import inspect
import reprlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from nbflow.exceptions import DatabaseUnavailableError

from nbflow.runtime import api
from nbflow.runtime.magic_cells import MagicCell, parse_line
from nbflow.runtime.post_mortem import PostMortem, default_run, post_mortem, task_of
from nbflow.utils.masking import masker

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist, _short.maxdict = 60, 60, 5, 5


def debug_task(shell: Any, env: api.Environment, dag: "DAG", task_id: str, *, run_id: str | None = None,
               try_number: int | None = None, map_index: int = -1, cell: MagicCell | None = None) -> PostMortem:
    """Bind the attempt's inputs in `shell.user_ns` and say what was bound; `cell` is the kernel's
    definition of a cell task, when the DAG was defined in this kernel."""
    with _database_errors(env):
        found = post_mortem(env, dag, task_id, run_id=run_id, try_number=try_number, map_index=map_index)
    bindings: dict[str, Any] = {"context": found.context}
    bindings.update({up: value for up, value in found.upstream.items() if up.isidentifier()})
    _header(found)
    kind = _kind(found.task)
    next_cell, notes = None, []
    if kind == "cell":
        next_cell, notes = _cell_task(shell, found, dag, cell)
    elif kind == "python":
        next_cell, extra = _python_task(found)
        bindings.update(extra)
    elif kind == "notebook":
        next_cell, extra = _notebook_task(found)
        bindings.update(extra)
    else:
        _template_fields(found)
        if cell is not None:  # a %%bash_task cell: its script, to edit and redefine
            next_cell = _cell_text(cell, dag)
    shell.user_ns.update(bindings)
    print("bound: " + ", ".join(_describe(name, value) for name, value in bindings.items()))
    for note in notes:
        print(note)
    if next_cell is not None:
        shell.set_next_input(next_cell, replace=False)
    print(f"when it is fixed: `%dag debug {dag.dag_id} {task_id} --retry --run {found.key.run_id}`")
    return found


def retry_task(env: api.Environment, dag: "DAG", task_id: str, *, run_id: str | None = None,
               map_index: int = -1, in_kernel: bool = False, scheduler_running: bool = False) -> int:
    """Clear the task instance (and what follows it) in its run so a scheduler runs it again; how many
    instances were cleared."""
    task_of(dag, task_id)
    with _database_errors(env):
        run_id = run_id or default_run(env, dag.dag_id, task_id, map_index=map_index)
        cleared = api.clear_tasks(env, dag.dag_id, run_id, [task_id])
    print(f"retrying {dag.dag_id}.{task_id} in run {run_id} with the task as defined now"
          f"{' in this kernel' if in_kernel else ''} ({cleared} task instance(s) cleared, downstream included)")
    if in_kernel and not scheduler_running:
        print("no scheduler runs this kernel's DAGs yet: start one with `%nbflow scheduler start`")
    return cleared


@contextlib.contextmanager
def _database_errors(env: api.Environment) -> Iterator[None]:
    """A database that went away after the magics checked it is one line, like one that never answered."""
    from nbflow.store.engine import safe_url
    try:
        yield
    except SQLAlchemyError as err:
        problem = str(getattr(err, "orig", None) or err).splitlines()[0]
        raise DatabaseUnavailableError(safe_url(env.config.sql_alchemy_conn), problem) from err


# -- what to show and bind, by kind of task ----------------------------------------------------------

def _kind(task: Any) -> str:
    from nbflow.operators.cell import CellTaskOperator
    from nbflow.operators.notebook import NotebookOperator
    from nbflow.operators.python import PythonOperator
    if isinstance(task, CellTaskOperator):
        return "cell"
    if isinstance(task, PythonOperator):
        return "python"
    if isinstance(task, NotebookOperator):
        return "notebook"
    return "other"


def _header(found: PostMortem) -> None:
    ended = found.attempt_state or "unknown"
    print(f"{found} of {found.tries} ({ended})" + (f": {found.error}" if found.error else ""))
    if found.render_error:
        print(f"its templates did not render: {found.render_error}")
    if found.log_tail:
        print(f"log {found.log_path}, last {len(found.log_tail)} lines:")
        for line in found.log_tail:
            print(f"  | {line}")
    else:
        print(f"(no log at {found.log_path})")


def _cell_task(shell: Any, found: PostMortem, dag: "DAG", cell: MagicCell | None) -> tuple[str, list[str]]:
    task = found.task
    if cell is not None:
        return (_cell_text(cell, dag),
                ["next cell: the task's source; run its body (without the %%task line) to reproduce the "
                 "failure with these inputs, or edit it and run the cell to redefine the task, then retry"])
    # A saved notebook's cell: the kernel does not define its DAG, so a %%task line would be refused here.
    for number, setup in enumerate(task.setup, 1):  # in a kernel these ran when the %%setup cells did
        try:
            exec(compile(setup, f"<setup {number} of {dag.dag_id}>", "exec"), shell.user_ns)  # noqa: S102
        except Exception as err:  # noqa: BLE001 - the user's setup; say so and go on
            print(f"setup cell {number} of {dag.dag_id} raised {type(err).__name__}: {err}")
    where = f" (cell {task.cell} of {dag.fileloc})" if task.cell else f" ({dag.fileloc})"
    return (f"# cell task {dag.dag_id}.{task.task_id}{where}: its inputs are bound, run this to reproduce;"
            f" fix it in the notebook file\n{task.source}", [])


def _cell_text(cell: MagicCell, dag: "DAG") -> str:
    """The defining cell as the user wrote it, naming its DAG so that running it redefines this task
    whichever `%%dag` cell ran last."""
    line = cell.line if parse_line(cell.magic, cell.line).dag else f"{cell.line} --dag {dag.dag_id}"
    return f"%%{cell.magic} {line}\n{cell.body}"


def _python_task(found: PostMortem) -> tuple[str, dict[str, Any]]:
    from nbflow.operators.python import determine_kwargs

    task, context = found.task, found.context
    fn = task.python_callable
    kwargs = {**determine_kwargs(fn, task.op_args, context, {"templates_dict": task.templates_dict}),
              **task.op_kwargs}
    name = fn.__name__ if getattr(fn, "__name__", "").isidentifier() else "python_callable"
    try:
        where = f"{inspect.getsourcefile(fn)}:{inspect.getsourcelines(fn)[1]}"
        print(f"python_callable {name}, {where}:")
        print(inspect.getsource(fn).rstrip())
    except (OSError, TypeError):
        print(f"python_callable {name}: its source is not available")
    bound, call = _call_of(fn, name, task.op_args, kwargs)
    return f"{call}  # {found.key.dag_id}.{found.key.task_id} with the attempt's arguments", {name: fn, **bound}


def _call_of(fn: Any, name: str, args: list[Any], kwargs: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Names to bind and the call that uses them: `load(rows, ds=ds, **extra_kwargs)`."""
    try:
        signature = inspect.signature(fn)
        arguments = dict(signature.bind_partial(*args).arguments)
    except (TypeError, ValueError):
        return {"op_args": list(args), "op_kwargs": kwargs}, f"{name}(*op_args, **op_kwargs)"
    parameters = signature.parameters
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    for key, value in kwargs.items():
        if key in parameters and parameters[key].kind not in variadic:
            arguments[key] = value
    extra = {k: v for k, v in kwargs.items() if k not in arguments}
    parts = []
    for key in parameters:
        if key not in arguments:
            continue
        kind = parameters[key].kind
        parts.append(f"*{key}" if kind is inspect.Parameter.VAR_POSITIONAL else
                     key if kind is inspect.Parameter.POSITIONAL_ONLY else f"{key}={key}")
    if extra:
        arguments["extra_kwargs"] = extra
        parts.append("**extra_kwargs")
    return arguments, f"{name}({', '.join(parts)})"


def _notebook_task(found: PostMortem) -> tuple[str | None, dict[str, Any]]:
    nb = found.notebook
    assert nb is not None
    if not nb.exists:
        print(f"no executed notebook at {nb.path} (the attempt ended before writing it)")
        return None, {}
    print(f"executed notebook: {nb.path}")
    for name in nb.unreadable_parameters:
        print(f"parameter {name} is computed by code in the notebook, not bound")
    if nb.failing_cell is None:
        print("no cell of it failed")
        return None, dict(nb.parameters)
    count = f" (In [{nb.execution_count}])" if nb.execution_count else ""
    print(f"failing cell: cell {nb.failing_cell}{count}: {nb.ename}: {nb.evalue}")
    header = f"# cell {nb.failing_cell}{count} of {nb.path.name}, which raised {nb.ename}; its parameters are bound"
    return f"{header}\n{nb.failing_source}", dict(nb.parameters)


def _template_fields(found: PostMortem) -> None:
    for name in found.task.template_fields:
        print(f"{name} = {masker.redact(_short.repr(getattr(found.task, name, None)))}")


def _describe(name: str, value: Any) -> str:
    if name == "context":
        return f"context (ds {value['ds']}, run {value['run_id']})"
    return f"{name} = {masker.redact(_short.repr(value))}"


__all__ = ["debug_task", "retry_task"]
