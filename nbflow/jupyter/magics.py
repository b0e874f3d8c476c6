"""`%load_ext nbflow`: DAGs and tasks written as cells, and the commands that run them.

Definitions (`%%dag`, `%%setup`, `%%task`, `%%bash_task`, `%notebook_task`) go to this kernel's
KernelDags, which checks each by building its DAG; commands (`%dag`, `%nbflow`, `%xcom`) go through
the runtime's one door (runtime/api.py), as the CLI does. A user's mistake is one UsageError line
under the cell; no task ever runs in the kernel's process.

The kernel never imports a file of the dags folder (one that exits or hangs at import would take the
user's kernel with it): it reads the folder's DAGs as the DAG processor serialized them, parsed in a
spawned process (`dag_catalog.catalog`), and hands a DAG's source to the child that tests or runs it.
`%dag debug` is the one exception: it runs a task's code here on purpose, so it imports that DAG's file.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand

from nbflow.exceptions import NbflowException
from nbflow.jupyter.kernel_dags import KernelDags
from nbflow.runtime.magic_cells import MagicCell, parse_line, parser_for
from nbflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.jupyter.kernel_scheduler import KernelScheduler
    from nbflow.runtime.api import Environment
    from nbflow.runtime.dag_catalog import DagCatalog
    from nbflow.runtime.serialized_dag import SerializedDag


class _CommandParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _dag_command_parser() -> argparse.ArgumentParser:
    parser = _CommandParser(prog="%dag", add_help=False,
                            description="List, show, test, run and export DAGs from the notebook.")
    parser.add_argument("-h", "--help", action="store_true")
    verbs = parser.add_subparsers(dest="verb", metavar="list|show|test|run|pause|unpause|export|debug",
                                  parser_class=_CommandParser)
    verbs.add_parser("list", add_help=False, help="the DAGs of this kernel and of the dags folder")
    show = verbs.add_parser("show", add_help=False, help="a DAG's graph and how it differs from its saved file")
    show.add_argument("dag_id", metavar="DAG_ID")
    test = verbs.add_parser("test", add_help=False, help="run the DAG once now, each task in a child process")
    test.add_argument("dag_id", metavar="DAG_ID")
    test.add_argument("--logical-date", metavar="DATE")
    test.add_argument("--conf", metavar="JSON")
    test.add_argument("--no-widget", action="store_true", help="do not show the test run's live graph")
    run = verbs.add_parser("run", add_help=False, help="trigger a run for the scheduler; returns at once")
    run.add_argument("dag_id", metavar="DAG_ID")
    run.add_argument("--conf", metavar="JSON")
    run.add_argument("--no-widget", action="store_true", help="do not show the run's live graph")
    for verb, says in (("pause", "stop scheduling new runs of the DAG"), ("unpause", "let the scheduler run it")):
        verbs.add_parser(verb, add_help=False, help=says).add_argument("dag_id", metavar="DAG_ID")
    export = verbs.add_parser("export", add_help=False, help="write the DAG as a .py DAG file")
    export.add_argument("dag_id", metavar="DAG_ID")
    export.add_argument("path", nargs="?", metavar="PATH", help="default: <dags folder>/<DAG_ID>.py")
    export.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    debug = verbs.add_parser("debug", add_help=False, help="bind a failed task's real inputs here; --retry re-queues it")
    debug.add_argument("dag_id", metavar="DAG_ID")
    debug.add_argument("task_id", metavar="TASK_ID")
    debug.add_argument("--run", metavar="RUN_ID", help="default: the latest run in which the task failed")
    debug.add_argument("--try", dest="try_number", type=int, metavar="N", help="default: its latest try")
    debug.add_argument("--map-index", type=int, default=-1, metavar="I")
    debug.add_argument("--retry", action="store_true", help="clear it in the run so the scheduler runs it again")
    return parser


def _nbflow_command_parser() -> argparse.ArgumentParser:
    parser = _CommandParser(prog="%nbflow", add_help=False, description="The in-kernel scheduler.")
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("noun", nargs="?", choices=["scheduler"], metavar="scheduler")
    parser.add_argument("verb", nargs="?", choices=["start", "stop", "status"], metavar="start|stop|status")
    return parser


def _xcom_parser() -> argparse.ArgumentParser:
    parser = _CommandParser(prog="%xcom", add_help=False, description="A task's XCom, from the latest run or --run.")
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("--run", metavar="RUN_ID", help="default: the latest run that has the value")
    parser.add_argument("--key", default="return_value")
    parser.add_argument("--map-index", type=int, default=-1)
    return parser


def _split(line: str, prog: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise UsageError(f"{prog}: {err}") from None


def _parse(parser: argparse.ArgumentParser, line: str) -> argparse.Namespace:
    words = _split(line, parser.prog)
    if "-h" in words or "--help" in words or not words:
        return argparse.Namespace(help=True)
    return parser.parse_args(words)


def _conf(text: str | None, prog: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise UsageError(f"{prog}: --conf is not valid JSON ({err}); pass one JSON object, e.g. "
                         f"'{{\"day\": 3}}'") from None
    if not isinstance(value, dict):
        raise UsageError(f"{prog}: --conf must be a JSON object")
    return value


@magics_class
class NbflowMagics(Magics):
    """The nbflow magics of one kernel; `%dag -h`, `%%task -h` and so on say how to use each."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.kernel_dags = KernelDags(os.getcwd())
        self.results: dict[tuple[str, str], str] = {}  # (dag_id, task_id) -> return value JSON of `--run`
        self._env: "Environment | None" = None
        self._scheduler: "KernelScheduler | None" = None
        self._db_checked = False
        self.widgets: list[Any] = []  # shown by %dag show / run; closed with the kernel

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def env(self) -> "Environment":
        if self._env is None:
            from nbflow.configuration import load_config
            from nbflow.runtime.api import Environment
            self._env = Environment.from_config(load_config())
            for dag_id in self.kernel_dags.dag_ids:  # the kernel's cells; the folder is never imported here
                self._env.cells.add_source(self.kernel_dags.source(dag_id))
        return self._env

    def _database_ready(self) -> "Environment":
        """The environment, once its metadata database answers; a fresh SQLite one is created here (as
        `nbflow standalone` does), anything else wrong is one line."""
        if self._db_checked:
            return self.env
        from nbflow.runtime import api

        env = self.env
        status = api.check_database(env)
        if not status.at_head:
            fresh_sqlite = env.config.sql_alchemy_conn.startswith("sqlite") and status.current_revision is None
            if not fresh_sqlite:
                reason = status.error or f"it is at revision {status.current_revision}, not the newest"
                raise UsageError(f"metadata database {status.url}: {reason}; run `nbflow db init` (or `db upgrade`)")
            api.init_database(env)
            print(f"(created the metadata database {status.url})")
        self._db_checked = True
        return env

    def _published(self, dag: "DAG") -> None:
        """A kernel DAG changed: the kernel's view and its scheduler see the new cells."""
        source = self.kernel_dags.source(dag.dag_id)
        if self._env is not None:
            self._env.cells.add_source(source)
        if self._scheduler is not None:
            self._scheduler.offer(source)

    def _folder(self) -> "DagCatalog":
        """The dags folder as the DAG processor sees it now: changed files parsed in a spawned process (stored
        once `db init` has run), never in the kernel; this kernel's cells are not part of it."""
        from nbflow.runtime.dag_catalog import catalog
        return catalog(self.env, cells=False)

    def _dag(self, dag_id: str, folder: "DagCatalog | None" = None, *,
             importable: bool = False) -> "DAG | SerializedDag":
        """A DAG of this kernel, else of the dags folder as stored (`importable`: only if its file imports
        now; else the stored import error, one line)."""
        if dag_id in self.kernel_dags:
            return self.kernel_dags.dag(dag_id)
        found = folder if folder is not None else self._folder()
        try:
            if importable:
                return found.importable(dag_id, self.env.config.dags_folder)
            return found.find(dag_id, self.env.config.dags_folder)
        except NbflowException as err:
            raise UsageError(f"{err}; defined in this kernel: {', '.join(self.kernel_dags.dag_ids) or 'none'}") \
                from None

    def _cell_id(self) -> str | None:
        try:
            return self.shell.kernel.get_parent().get("metadata", {}).get("cellId")  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - not in a kernel (plain IPython), or an older ipykernel
            return None

    def _define(self, magic: str, line: str, body: str = "") -> tuple["DAG", Any]:
        try:
            args = parse_line(magic, line)
        except NbflowException as err:
            raise UsageError(str(err)) from None
        if args.help:
            print(parser_for(magic).format_help())
            return None, args  # type: ignore[return-value]
        try:
            dag = self.kernel_dags.define(MagicCell(magic, line, body), cell_id=self._cell_id())
        except NbflowException as err:
            raise UsageError(str(err)) from None
        self._published(dag)
        return dag, args

    # -- definitions --------------------------------------------------------------------------------
    @cell_magic("dag")
    @no_var_expand  # a definition line means what the saved notebook says: `{{ ds }}` stays a template
    def dag_cell(self, line: str, cell: str) -> None:
        """%%dag DAG_ID [--schedule S] [--start-date D] [--catchup] [--retries N] [--retry-delay SECONDS]
        [--max-active-runs N] [--tags a,b] [--default-args JSON]: declare a DAG (`%%dag -h` for more)."""
        dag, args = self._define("dag", line, cell)
        if dag is not None:
            print(f"DAG {dag.dag_id}: {len(dag.task_dict)} task(s), schedule {dag.timetable.summary}")

    @cell_magic("setup")
    @no_var_expand  # a definition line means what the saved notebook says: `{{ ds }}` stays a template
    def setup_cell(self, line: str, cell: str) -> None:
        """%%setup [--dag DAG_ID]: imports and helpers every cell task of the DAG runs first; runs now too."""
        dag, args = self._define("setup", line, cell)
        if dag is not None:
            self.shell.run_cell(cell, store_history=False)

    @line_magic("task")
    def task_line(self, line: str) -> None:
        """`%task -h`: how to write a `%%task` cell (the task's code goes below the magic line)."""
        self._line_form("task", line)

    @line_magic("bash_task")
    def bash_task_line(self, line: str) -> None:
        """`%bash_task -h`: how to write a `%%bash_task` cell."""
        self._line_form("bash_task", line)

    @line_magic("setup")
    def setup_line(self, line: str) -> None:
        """`%setup -h`: how to write a `%%setup` cell."""
        self._line_form("setup", line)

    def _line_form(self, magic: str, line: str) -> None:
        if line.split() and line.split()[0] in ("-h", "--help"):
            print(parser_for(magic).format_help())
            return
        raise UsageError(f"%%{magic} is a cell magic: start the cell with `%%{magic} {line.strip()}` and put "
                         f"the {'script' if magic == 'bash_task' else 'code'} below it (`%{magic} -h` for help)")

    @cell_magic("task")
    @no_var_expand  # a definition line means what the saved notebook says: `{{ ds }}` stays a template
    def task_cell(self, line: str, cell: str) -> Any:
        """%%task TASK_ID [--dag DAG_ID] [--upstream A B ...] [--retries N] [--retry-delay S] [--email A,B]
        [--[no-]email-on-failure] [--[no-]email-on-retry] [--trigger-rule R] [--run]: the cell is a task
        (`%%task -h` for more)."""
        return self._task("task", line, cell)

    @cell_magic("bash_task")
    @no_var_expand  # a definition line means what the saved notebook says: `{{ ds }}` stays a template
    def bash_task_cell(self, line: str, cell: str) -> Any:
        """%%bash_task TASK_ID [--dag DAG_ID] [--upstream A B ...] [--run]: the cell is a bash script task."""
        return self._task("bash_task", line, cell)

    @line_magic("notebook_task")
    @no_var_expand  # a definition line means what the saved notebook says: `{{ ds }}` stays a template
    def notebook_task_line(self, line: str) -> Any:
        """%notebook_task TASK_ID --notebook PATH [-p NAME VALUE ...] [--upstream ...] [--run]: a notebook task."""
        return self._task("notebook_task", line, "")

    def _task(self, magic: str, line: str, body: str) -> Any:
        dag, args = self._define(magic, line, body)
        if dag is None:
            return None
        if not args.run:
            upstream = sorted(dag.task_dict[args.task_id].upstream_task_ids)
            print(f"task {dag.dag_id}.{args.task_id}" + (f" after {', '.join(upstream)}" if upstream else ""))
            return None
        return self._run_task(dag, args.task_id)

    def _run_task(self, dag: "DAG", task_id: str) -> Any:
        """Run one task now in a child process against the latest upstream return values."""
        from nbflow.jupyter.child import run_child
        from nbflow.utils.serialization import deserialize

        upstream: dict[str, str] = {}
        for up in sorted(dag.task_dict[task_id].upstream_task_ids):
            value = self.results.get((dag.dag_id, up))
            if value is None:
                value = self._latest_xcom(dag.dag_id, up)
            if value is None and getattr(dag.task_dict[up], "source", None) is not None:  # a cell task
                print(f"(upstream {up} has no result yet: run it with --run, or run the DAG; {up} is None here)")
            else:
                upstream[up] = value
        request = {"action": "run_task", "source": self._source(dag).to_dict(), "dag_id": dag.dag_id,
                   "task_id": task_id, "upstream": upstream}
        child = run_child(request, show=_show_task_output)
        result = child.result
        if result is None:
            raise UsageError(f"task {dag.dag_id}.{task_id}: its process ended with code {child.exit_code} "
                             f"before reporting a result")
        if result["state"] != TaskInstanceState.SUCCESS:
            raise UsageError(f"task {dag.dag_id}.{task_id} {result['state']}: "
                             f"{(result.get('error') or '').splitlines()[0] if result.get('error') else ''}"
                             f" (log: {result.get('log_path')})")
        if result.get("return_value") is not None:
            self.results[(dag.dag_id, task_id)] = result["return_value"]
            return deserialize(result["return_value"])
        return None

    def _source(self, dag: "DAG | SerializedDag") -> Any:
        """Where a child process loads the DAG from: this kernel's cells, or the file the catalog names."""
        from nbflow.runtime.dag_source import source_of
        if dag.dag_id in self.kernel_dags:
            return self.kernel_dags.source(dag.dag_id)
        return dag.source if _is_serialized(dag) else source_of(dag)  # type: ignore[arg-type]

    def _latest_xcom(self, dag_id: str, task_id: str) -> str | None:
        """The JSON of the task's return value in the latest run that has one, else None."""
        from nbflow.runtime import api
        from nbflow.utils.serialization import serialize
        try:
            env = self._database_ready()
            for run in api.list_runs(env, dag_id, limit=20):
                try:
                    return serialize(api.get_xcom(env, dag_id, task_id, run.run_id, masked=False).value)
                except NbflowException:
                    continue
        except (NbflowException, UsageError):
            return None
        return None

    # -- commands ---------------------------------------------------------------------------------
    @line_magic("dag")
    def dag_line(self, line: str) -> Any:
        """%dag list | show DAG_ID | test DAG_ID | run DAG_ID [--conf JSON] | pause|unpause DAG_ID |
        export DAG_ID [PATH] | debug DAG_ID TASK_ID [--run RUN_ID] [--try N] [--retry]"""
        parser = _dag_command_parser()
        args = _parse(parser, line)
        if args.help:
            print(parser.format_help())
            print("To declare a DAG, start a cell with `%%dag DAG_ID [options]` and put DAG code (or nothing) below:")
            print(parser_for("dag").format_help())
            return None
        try:
            return getattr(self, f"_dag_{args.verb}")(args)
        except NbflowException as err:
            raise UsageError(str(err)) from None

    def _dag_list(self, args: argparse.Namespace) -> None:
        from nbflow.runtime.notebook_dags import task_differences

        folder = self._folder()  # the saved files as they are now: a notebook saved since the last look ends its drift
        saved_ids = self._saved_ids(folder)
        rows = []
        for dag_id in sorted(set(self.kernel_dags.dag_ids) | saved_ids):
            in_kernel = dag_id in self.kernel_dags
            saved = folder.dags[dag_id] if dag_id in saved_ids else None
            dag = self.kernel_dags.dag(dag_id) if in_kernel else saved
            assert dag is not None
            where = "kernel" if in_kernel and saved is None else os.path.relpath(saved.fileloc) if saved else "?"
            if in_kernel and saved is not None:
                diff = task_differences(self.kernel_dags.dag(dag_id), saved)
                where = f"kernel + {os.path.relpath(saved.fileloc)}"
                drift = "; ".join(diff) if diff else "same as saved"
            else:
                drift = ""
            rows.append((dag_id, where, str(len(dag.task_dict)), _schedule(dag), drift))
        broken = [f"import error: {error.splitlines()[0].replace(path, os.path.relpath(path), 1)}"
                  for path, error in sorted(folder.import_errors.items()) if error]
        if not rows:
            print("no DAGs yet: define one with %%dag, or put DAG files in " + str(self.env.config.dags_folder))
            for line in broken:
                print(line)
            return
        widths = [max(len(r[i]) for r in [("dag_id", "defined in", "tasks", "schedule", "drift"), *rows])
                  for i in range(5)]
        for row in [("dag_id", "defined in", "tasks", "schedule", "drift"), *rows]:
            print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        for line in broken:  # one line per file that fails to import; the others are listed above
            print(line)

    def _dag_show(self, args: argparse.Namespace) -> Any:
        from nbflow.runtime.notebook_dags import task_differences

        folder = self._folder()  # compare with the file as saved now
        dag = self._dag(args.dag_id, folder)
        saved = self._saved(args.dag_id, folder)
        if args.dag_id in self.kernel_dags and saved is not None:
            diff = task_differences(dag, saved)  # type: ignore[arg-type]
            print(f"differs from {saved.fileloc} (what the scheduler runs): {'; '.join(diff)}" if diff
                  else f"same as {saved.fileloc}")
        error = folder.import_errors.get(saved.fileloc) if saved is not None else None
        if error:
            print(f"its file fails to import now, so this is the DAG as last parsed: {error.splitlines()[0]}")
        self._show_widget(saved or dag)
        return None

    def _show_widget(self, dag: "DAG | SerializedDag", run_id: str | None = None, reader: Any = None) -> Any:
        from IPython.display import display

        from nbflow.jupyter.widgets import DagWidget

        widget = DagWidget(dag.dag_id, run_id, dag=dag, env=None if reader is not None else self.env, reader=reader)
        handle = display(widget, display_id=True)
        if getattr(self.shell, "kernel", None) is not None:  # a terminal has no output to update later
            widget.display_handle = handle
        self.widgets.append(widget)
        return widget

    def _saved(self, dag_id: str, folder: "DagCatalog") -> "SerializedDag | None":
        """The DAG as a file in the dags folder defines it (what a scheduler runs), if one does."""
        return folder.dags[dag_id] if dag_id in self._saved_ids(folder) else None

    def _dag_test(self, args: argparse.Namespace) -> None:
        from nbflow.jupyter.child import run_child

        dag = self._dag(args.dag_id, importable=True)  # a folder DAG's file is imported in the child only
        request = {"action": "test", "source": self._source(dag).to_dict(), "dag_id": dag.dag_id,
                   "logical_date": args.logical_date, "conf": _conf(args.conf, "%dag test")}
        feed = widget = None
        if not args.no_widget:
            from nbflow.configuration import load_config
            from nbflow.jupyter.dag_test_feed import DagTestFeed
            feed = DagTestFeed(dag.dag_id, list(dag.task_dict), load_config().log_folder)
            widget = self._show_widget(dag, None, reader=feed.view)

        def hear(event: dict[str, Any]) -> None:
            assert feed is not None and widget is not None
            feed.hear(event)
            widget.refresh()

        child = run_child(request, on_event=hear if feed is not None else None)
        if feed is not None and widget is not None:
            feed.finish(child.exit_code == 0)
            widget.refresh()
        if child.exit_code != 0:
            last = child.lines[-1] if child.lines else f"exit code {child.exit_code}"
            raise UsageError(f"%dag test {dag.dag_id}: {last.removeprefix('error: ')}")

    def _dag_run(self, args: argparse.Namespace) -> None:
        from nbflow.runtime import api

        folder = None if args.dag_id in self.kernel_dags else self._folder()
        dag = self._dag(args.dag_id, folder)
        env = self._database_ready()
        run = api.trigger_dag(env, dag.dag_id, conf=_conf(args.conf, "%dag run"))
        print(f"queued run {run.run_id} of {dag.dag_id}")
        if api.is_paused(env, dag.dag_id):  # dags_are_paused_at_creation: a paused DAG's runs wait
            print(f"DAG {dag.dag_id} is paused, so the run waits: unpause it with `%dag unpause {dag.dag_id}` "
                  f"(or set [core] dags_are_paused_at_creation = false in nbflow.toml)")
        saved = self._saved(dag.dag_id, folder) if folder is not None else None
        if not args.no_widget:
            self._show_widget(saved or dag, run.run_id)
        if dag.dag_id in self.kernel_dags and saved is None and \
                (self._scheduler is None or not self._scheduler.running):
            print("no scheduler runs this kernel's DAGs yet: start one with `%nbflow scheduler start`")

    def _dag_debug(self, args: argparse.Namespace) -> None:
        """Binds a task's real inputs in this kernel and shows its code, so the user steps through it here:
        unlike every other magic, this imports the one file that defines a folder DAG into the kernel (only
        once the DAG processor found that it imports, in a child). `--retry` imports nothing."""
        from nbflow.jupyter.debugger import debug_task, retry_task

        if args.retry:
            dag, env = self._dag(args.dag_id), self._database_ready()
            running = self._scheduler is not None and self._scheduler.running
            retry_task(env, dag, args.task_id, run_id=args.run, map_index=args.map_index,  # type: ignore[arg-type]
                       in_kernel=args.dag_id in self.kernel_dags, scheduler_running=running)
            return
        # a folder DAG: its file is imported here only once a spawned processor found that it imports
        dag = self.kernel_dags.dag(args.dag_id) if args.dag_id in self.kernel_dags else self.env.get_dag(args.dag_id)
        env = self._database_ready()
        cell = None
        if args.dag_id in self.kernel_dags:
            cell = next((c for c in self.kernel_dags.cells(args.dag_id)
                         if c.magic in ("task", "bash_task") and c.arguments().task_id == args.task_id), None)
        debug_task(self.shell, env, dag, args.task_id, run_id=args.run, try_number=args.try_number,
                   map_index=args.map_index, cell=cell)

    def _dag_pause(self, args: argparse.Namespace, paused: bool = True) -> None:
        from nbflow.runtime import api

        dag = self._dag(args.dag_id)
        api.set_paused(self._database_ready(), dag.dag_id, paused)
        print(f"DAG {dag.dag_id} {'paused' if paused else 'unpaused'}")

    def _dag_unpause(self, args: argparse.Namespace) -> None:
        self._dag_pause(args, paused=False)

    @staticmethod
    def _saved_ids(folder: "DagCatalog") -> set[str]:
        """Ids of the DAGs that files of the dags folder define (not cells some kernel registered)."""
        from nbflow.runtime.dag_source import KERNEL_PREFIX
        return {dag_id for dag_id, dag in folder.dags.items() if not dag.fileloc.startswith(KERNEL_PREFIX)}

    def _dag_export(self, args: argparse.Namespace) -> None:
        from pathlib import Path

        from nbflow.runtime.notebook_export import export_python

        if args.dag_id not in self.kernel_dags:
            raise UsageError(f"%dag export: DAG {args.dag_id!r} is not defined in this kernel; defined here: "
                             f"{', '.join(self.kernel_dags.dag_ids) or 'none'}")
        path = Path(args.path) if args.path else self.env.config.dags_folder / f"{args.dag_id}.py"
        if path.exists() and not args.force:
            raise UsageError(f"%dag export: {path} exists; pass --force to overwrite it")
        text = export_python(self.kernel_dags.cells(args.dag_id), args.dag_id, where="this notebook")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({len(text.splitlines())} lines); check it with `nbflow dags test {args.dag_id}`")

    @line_magic("nbflow")
    def nbflow_line(self, line: str) -> Any:
        """%nbflow scheduler start|stop|status: the scheduler on a background thread of this kernel."""
        parser = _nbflow_command_parser()
        args = _parse(parser, line)
        if args.help or args.noun is None or args.verb is None:
            print(parser.format_help())
            return None
        from nbflow.jupyter.kernel_scheduler import KernelScheduler
        from nbflow.runtime import api
        try:
            if args.verb == "start":
                if self._scheduler is not None and self._scheduler.running:
                    print("the scheduler is already running in this kernel")
                    return None
                self._scheduler = self._scheduler or KernelScheduler(self._database_ready().config)
                self._scheduler.start([self.kernel_dags.source(d) for d in self.kernel_dags.dag_ids])
                print(f"scheduler started in this kernel: DAGs from {self.env.config.dags_folder} and "
                      f"{len(self.kernel_dags.dag_ids)} defined here; database {api.database_url(self.env)}")
            elif args.verb == "stop":
                if self._scheduler is None or not self._scheduler.running:
                    print("no scheduler is running in this kernel")
                    return None
                ended = self._scheduler.stop()
                print("scheduler stopped" if ended else "scheduler asked to stop; tasks are still finishing")
            else:
                status = self._scheduler.status() if self._scheduler else {"running": False, "news": []}
                state = "running" if status["running"] else "stopped"
                print(f"scheduler {state}" + (f" since {status['since']}, {status['dags']} DAG(s), "
                                              f"{status['running_tasks']} task(s) running"
                                              if status["running"] else ""))
                if status.get("error"):
                    print(f"it stopped on an error: {status['error']}")
                for news in status["news"][-10:]:
                    print(f"  {news}")
        except NbflowException as err:
            raise UsageError(str(err)) from None
        return None

    @line_magic("xcom")
    def xcom_line(self, line: str) -> Any:
        """%xcom DAG_ID TASK_ID [--run RUN_ID] [--key KEY]: a task's XCom value (latest run by default), secrets
        masked (the value is for display; a task reads the real one)."""
        from nbflow.runtime import api

        parser = _xcom_parser()
        args = _parse(parser, line)
        if args.help:
            print(parser.format_help())
            return None
        try:
            entry = api.get_xcom(self._database_ready(), args.dag_id, args.task_id, args.run, key=args.key,
                                 map_index=args.map_index, masked=True)
        except NbflowException as err:
            raise UsageError(str(err)) from None
        return entry.value


def _is_serialized(dag: Any) -> bool:
    from nbflow.runtime.serialized_dag import SerializedDag
    return isinstance(dag, SerializedDag)


def _schedule(dag: "DAG | SerializedDag") -> str:
    """The schedule as `%dag list` shows it (`None` for none), for a DAG or a stored one."""
    if _is_serialized(dag):
        return dag.schedule_summary or "None"  # type: ignore[union-attr]
    return str(dag.timetable.summary)


def _show_task_output(line: str) -> None:
    if not line.startswith("[nbflow] "):  # the attempt's own header and footer lines
        print(line, flush=True)


def register(ipython: Any) -> None:
    """Called by `%load_ext nbflow`."""
    ipython.register_magics(NbflowMagics)


__all__ = ["NbflowMagics", "register"]
