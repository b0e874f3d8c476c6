"""`nbflow tasks run|clear|states-for-dag-run|logs`: task instances of runs in the metadata database."""
from __future__ import annotations

import argparse
import sys
import time

from nbflow.cli.arguments import add_output
from nbflow.cli.errors import CliError
from nbflow.cli.loading import open_env
from nbflow.cli.output import emit
from nbflow.configuration import Config

TI_COLUMNS = ["task_id", "map_index", "state", "try_number", "start_date", "end_date", "duration", "hostname"]


def register_verbs(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = verbs.add_parser("run", parents=[common],
                              help="run one task instance of an existing run, recording its state (what executors call)")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("--map-index", type=int, default=-1, metavar="N")
    parser.set_defaults(run=run_task)

    parser = verbs.add_parser("clear", parents=[common], help="reset tasks of a run (and their downstream) to run again")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("-t", "--task-regex", default=None, help="tasks whose id matches (default: all)")
    parser.add_argument("--only-matching", action="store_true", help="do not clear their downstream tasks")
    parser.set_defaults(run=clear_tasks)

    parser = verbs.add_parser("states-for-dag-run", parents=[common], help="every task instance of one run")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("run_id", metavar="RUN_ID")
    add_output(parser)
    parser.set_defaults(run=states_for_dag_run)

    parser = verbs.add_parser("logs", parents=[common], help="print a task's attempt log")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("--try", dest="try_number", type=int, default=None, metavar="N",
                        help="which attempt (default: the latest)")
    parser.add_argument("--map-index", type=int, default=-1, metavar="N")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing until the attempt ends")
    parser.set_defaults(run=task_logs)


def run_task(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    result = api.run_task_instance(open_env(conf), args.dag_id, args.task_id, args.run_id, map_index=args.map_index)
    print(f"{result.key}: {result.state}", file=sys.stderr)
    return 0 if result.succeeded else 1


def clear_tasks(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.cli.dags import select_tasks
    from nbflow.runtime import api
    env = open_env(conf)
    dag = api.dag_structure(env, args.dag_id)  # as stored by the DAG processor: no DAG file imported here
    chosen = select_tasks(dag, args.task_regex) or set(dag.task_dict)
    count = api.clear_tasks(env, args.dag_id, args.run_id, sorted(chosen), downstream=not args.only_matching)
    print(f"cleared {count} task instance(s) of run {args.run_id}; the scheduler runs them again", file=sys.stderr)
    return 0


def states_for_dag_run(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    rows = api.task_states(open_env(conf), args.dag_id, args.run_id)
    emit([{c: getattr(r, c) for c in TI_COLUMNS} for r in rows], TI_COLUMNS, args.output)
    return 0


def task_logs(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    env = open_env(conf)
    chunk = api.read_log(env, args.dag_id, args.run_id, args.task_id, try_number=args.try_number,
                         map_index=args.map_index)
    while True:
        if chunk.text:
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
        if not args.follow or api.attempt_ended(env, args.dag_id, args.run_id, args.task_id,
                                                try_number=args.try_number, map_index=args.map_index):
            break
        time.sleep(0.2)
        chunk = api.read_log(env, args.dag_id, args.run_id, args.task_id, try_number=chunk.try_number,
                             map_index=args.map_index, offset=chunk.next_offset)
    if not chunk.exists:
        raise CliError(f"no log for {args.task_id} try {args.try_number or 'latest'} of run {args.run_id} at "
                       f"{chunk.path}; the attempt has not started")
    return 0
