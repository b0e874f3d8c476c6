"""`nbflow tasks ...`: run one task of a DAG in this process, ignoring its dependencies."""
from __future__ import annotations

import argparse
import sys

from nbflow.cli.arguments import add_output, add_run_arguments, parse_conf, parse_logical_date
from nbflow.cli.errors import CliError
from nbflow.cli.loading import open_env
from nbflow.cli.output import emit
from nbflow.configuration import Config
from nbflow.utils.state import TaskInstanceState


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    noun = commands.add_parser("tasks", parents=[common], help="run, test, clear single tasks; their states and logs")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)

    parser = verbs.add_parser("test", parents=[common],
                              help="run one task in this process, ignoring dependencies (upstream XComs are absent)")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("task_id", metavar="TASK_ID")
    add_run_arguments(parser)
    parser.add_argument("--map-index", type=int, default=None, metavar="N",
                        help="for a mapped task: which of its instances to run")
    parser.set_defaults(run=test_task)

    parser = verbs.add_parser("list", parents=[common], help="the tasks of one DAG (its file is parsed in a child)")
    parser.add_argument("dag_id", metavar="DAG_ID")
    add_output(parser)
    parser.set_defaults(run=list_tasks)

    from nbflow.cli.task_runs import register_verbs
    register_verbs(verbs, common)  # run, clear, states-for-dag-run, logs
    from nbflow.cli.xcoms import register_xcom_verb
    register_xcom_verb(verbs, common)


def test_task(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    logical_date = parse_logical_date(args.logical_date)
    run_conf = parse_conf(args.conf)
    result = api.run_task_test(open_env(conf, database=False), args.dag_id, args.task_id,
                               logical_date=logical_date, conf=run_conf, map_index=args.map_index, echo=sys.stdout)
    sys.stdout.flush()
    if result.state == TaskInstanceState.FAILED:
        raise CliError(f"task {result.label} failed: {(result.error or 'no error message').splitlines()[0]}; "
                       f"log: {result.log_path}")
    print(f"task {result.label}: {result.state} in {result.duration:.3f} s; log: {result.log_path}", file=sys.stderr)
    return 0


TASK_COLUMNS = ["task_id", "operator", "upstream", "downstream", "trigger_rule", "retries", "pool"]


def list_tasks(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    tasks = api.list_tasks(open_env(conf, database=False), args.dag_id)
    rows = [{"task_id": t.task_id, "operator": t.operator, "upstream": list(t.upstream),
             "downstream": list(t.downstream), "trigger_rule": t.trigger_rule, "retries": t.retries,
             "pool": t.pool} for t in tasks]
    emit(rows, TASK_COLUMNS, args.output, empty_message=f"DAG {args.dag_id} has no tasks")
    return 0
