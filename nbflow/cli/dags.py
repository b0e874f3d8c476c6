"""`nbflow dags ...`: list DAGs and import errors, draw a DAG, test-run a DAG in this process."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.cli.arguments import add_output, add_run_arguments, parse_conf, parse_logical_date
from nbflow.cli.errors import CliError
from nbflow.cli.loading import open_env
from nbflow.cli.output import emit, print_table
from nbflow.configuration import Config
from nbflow.utils.state import DagRunState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.inprocess import TaskEvent


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    noun = commands.add_parser("dags", parents=[common], help="list, show and test DAGs")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)

    parser = verbs.add_parser("list", parents=[common], help="the DAGs in the dags folder")
    add_output(parser)
    parser.set_defaults(run=list_dags)

    parser = verbs.add_parser("list-import-errors", parents=[common], help="DAG files that failed to load, and why")
    add_output(parser)
    parser.set_defaults(run=list_import_errors)

    parser = verbs.add_parser("show", parents=[common], help="a DAG's graph: DOT text, or a picture with --save")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("--save", metavar="PATH", help="write the graph to PATH: .dot, .svg, .png or .pdf")
    parser.set_defaults(run=show_dag)

    parser = verbs.add_parser("test", parents=[common],
                              help="run every task of one DAG run in this process, in dependency order")
    parser.add_argument("dag_id", metavar="DAG_ID")
    add_run_arguments(parser)
    parser.add_argument("--task-regex", metavar="REGEX",
                        help="run only tasks whose id matches REGEX (tasks left out count as succeeded)")
    parser.set_defaults(run=test_dag)

    from nbflow.cli.dag_runs import register_verbs
    register_verbs(verbs, common)  # trigger, pause, unpause, list-runs, state, backfill


# -- list ---------------------------------------------------------------------------------------------

def list_dags(args: argparse.Namespace, conf: Config) -> int:
    # `api_dags` is the part of the door (`nbflow.runtime.api` re-exports it) that lists DAGs; importing it
    # alone keeps SQLAlchemy out of a listing on SQLite (issue 14: <= 0.1 s when nothing changed).
    from nbflow.runtime import api_dags
    listing = api_dags.list_dags(open_env(conf, database=False))
    rows: list[dict[str, Any]] = [{"dag_id": dag.dag_id, "file": dag.file, "schedule": dag.schedule,
                                   "tags": list(dag.tags), "paused": dag.paused} for dag in listing.dags]
    emit(rows, ["dag_id", "file", "schedule", "tags", "paused"], args.output,
         empty_message=f"no DAGs found in {listing.folder}")
    if listing.import_error_count:
        print(f"warning: {listing.import_error_count} file(s) failed to import; see `nbflow dags list-import-errors`",
              file=sys.stderr)
    return 0


def list_import_errors(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    errors = api.list_import_errors(open_env(conf, database=False))
    if args.output == "table":  # one line per file; the traceback is in the JSON and under `dags test`
        rows = [{"file": error.file, "error": error.summary} for error in errors]
    else:
        rows = [{"file": error.file, "error": error.error} for error in errors]
    emit(rows, ["file", "error"], args.output, empty_message="no import errors")
    return 0


# -- show ---------------------------------------------------------------------------------------------

def show_dag(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.graph import RENDER_FORMATS, dag_to_dot, render
    from nbflow.runtime import api
    dag = api.get_serialized_dag(open_env(conf, database=False), args.dag_id)  # its file is not imported here
    dot = dag_to_dot(dag)
    if not args.save:
        sys.stdout.write(dot)
        return 0
    path = Path(args.save)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "dot":
        data = dot.encode()
    elif fmt in RENDER_FORMATS:
        data = render(dot, fmt)
    else:
        raise CliError(f"--save {args.save}: cannot tell the format from {path.suffix or 'no suffix'!r}; "
                       f"end the name with .dot, .svg, .png or .pdf")
    try:
        path.write_bytes(data)
    except OSError as err:
        raise CliError(f"--save {args.save}: cannot write the file: {err.strerror or err}") from None
    print(f"saved the graph of {dag.dag_id} to {path}", file=sys.stderr)
    return 0


# -- test ---------------------------------------------------------------------------------------------

def select_tasks(dag: "DAG", regex: str | None) -> set[str] | None:
    """The task ids matching `regex` (re.search, as Airflow's task_regex), or None for all of them."""
    if regex is None:
        return None
    import re
    try:
        pattern = re.compile(regex)
    except re.error as err:
        raise CliError(f"--task-regex {regex!r} is not a valid regular expression: {err}") from None
    chosen = {task_id for task_id in dag.task_dict if pattern.search(task_id)}
    if not chosen:
        raise CliError(f"--task-regex {regex!r} matches no task of DAG {dag.dag_id!r}; its tasks are: "
                       f"{', '.join(sorted(dag.task_dict))}")
    return chosen


def task_label(task_id: str, map_index: int) -> str:
    return f"{task_id}[{map_index}]" if map_index >= 0 else task_id


class ProgressPrinter:
    """One line per finished task instance: `task_id[map_index]  state  duration  try N`."""

    def __init__(self, dag: "DAG") -> None:
        self.width = max((len(task_id) for task_id in dag.task_dict), default=10) + 4
        self.errors: dict[str, str] = {}  # the last error of each task instance, by label

    def __call__(self, event: "TaskEvent") -> None:
        if event.kind != "finished":
            return
        if event.error:
            self.errors[task_label(event.task_id, event.map_index)] = event.error
        duration = f"{event.duration:8.3f} s" if event.duration is not None else " " * 10
        print(f"{task_label(event.task_id, event.map_index):<{self.width}} {event.state or '':<16} {duration}  "
              f"try {event.try_number}", flush=True)


def test_dag(args: argparse.Namespace, conf: Config) -> int:
    logical_date = parse_logical_date(args.logical_date)
    run_conf = parse_conf(args.conf)
    from nbflow.runtime import api
    env = open_env(conf, database=False)
    dag = api.get_dag(env, args.dag_id)
    task_ids = select_tasks(dag, args.task_regex)
    run = api.new_test_run(env, dag.dag_id, logical_date=logical_date, conf=run_conf)
    print(f"testing DAG {dag.dag_id}, run {run.run_id}: {len(task_ids or dag.task_dict)} task(s); "
          f"logs under {conf.log_folder}", file=sys.stderr, flush=True)
    progress = ProgressPrinter(dag)
    result = api.run_dag_test(env, run, task_ids=task_ids, echo=sys.stdout, on_event=progress)
    sys.stdout.flush()
    if result.tasks:
        print()
        print_table([{"task_id": row["task_id"], "map_index": row["map_index"] if row["map_index"] >= 0 else None,
                      "state": row["state"], "try": row["try_number"], "duration": row["duration"]}
                     for row in result.tasks], ["task_id", "map_index", "state", "try", "duration"])
    if result.state != DagRunState.SUCCESS:
        if result.failed_task:
            detail = progress.errors.get(result.failed_task)
            reason = f"task {result.failed_task} failed" + (f": {detail.splitlines()[0]}" if detail else "")
        else:
            reason = result.error or result.state
        raise CliError(f"run {run.run_id} failed: {reason}")
    print(f"run {run.run_id}: success in {result.duration:.3f} s", file=sys.stderr)
    return 0
