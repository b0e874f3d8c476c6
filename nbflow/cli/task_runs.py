"""`nbflow tasks run|clear|states-for-dag-run|logs`: task instances of runs in the metadata database."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from nbflow.cli.arguments import add_output
from nbflow.cli.dag_runs import _env
from nbflow.cli.errors import CliError
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
    from nbflow.runtime.attempt import execute_workload
    from nbflow.runtime.workload import Workload
    from nbflow.store import session_scope, ti_state
    from nbflow.store.keys import TIKey
    env = _env(conf)
    dag = env.get_dag(args.dag_id)
    dag.get_task(args.task_id)
    api.get_run(env, args.dag_id, args.run_id)
    key = TIKey(args.dag_id, args.task_id, args.run_id, args.map_index)
    with session_scope(env.sessions) as session:
        row = api.ti_rows.get_task_instance(session, key)
        if row is None:
            raise CliError(f"run {args.run_id} of {args.dag_id} has no task instance {args.task_id}"
                           + (f"[{args.map_index}]" if args.map_index >= 0 else ""))
        if row.state != "queued" and not ti_state.set_task_state(
                session, key, "queued", expected_state=(None, "scheduled", "up_for_retry")):
            raise CliError(f"task {args.task_id} of run {args.run_id} is {row.state}; clear it first "
                           f"(`nbflow tasks clear {args.dag_id} {args.run_id} -t '^{args.task_id}$'`)")
    workload = Workload(args.dag_id, args.task_id, args.run_id, args.map_index, row.try_number + 1, dag.fileloc)
    execute_workload(workload, dag, session_factory=env.sessions, log_folder=conf.log_folder,
                     max_xcom_size=conf.getint("core", "max_xcom_size"),
                     heartbeat_sec=conf.getfloat("scheduler", "task_heartbeat_sec"), read_session_factory=env.readers)
    with session_scope(env.readers) as session:
        final = api.ti_rows.get_task_instance(session, key)
    state = final.state if final else None
    print(f"{key}: {state}", file=sys.stderr)
    return 0 if state in ("success", "skipped") else 1


def clear_tasks(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.cli.dags import select_tasks
    from nbflow.runtime import api
    env = _env(conf)
    dag = env.get_dag(args.dag_id)
    chosen = select_tasks(dag, args.task_regex) or set(dag.task_dict)
    count = api.clear_tasks(env, args.dag_id, args.run_id, sorted(chosen), downstream=not args.only_matching)
    print(f"cleared {count} task instance(s) of run {args.run_id}; the scheduler runs them again", file=sys.stderr)
    return 0


def states_for_dag_run(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    rows = api.task_states(_env(conf), args.dag_id, args.run_id)
    emit([{c: getattr(r, c) for c in TI_COLUMNS} for r in rows], TI_COLUMNS, args.output)
    return 0


def task_logs(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    from nbflow.store.keys import TIKey
    from nbflow.utils.masking import masker
    env = _env(conf)
    api.get_run(env, args.dag_id, args.run_id)
    path = api.log_path(env, args.dag_id, args.run_id, args.task_id, args.try_number, args.map_index)
    key = TIKey(args.dag_id, args.task_id, args.run_id, args.map_index)
    offset = 0
    while True:
        if path.exists():
            with path.open(encoding="utf-8", errors="replace") as file:
                file.seek(offset)
                chunk = file.read()
                offset = file.tell()
            if chunk:
                sys.stdout.write(masker.redact(chunk))
                sys.stdout.flush()
        if not args.follow or _attempt_over(env, key, args.try_number):
            break
        time.sleep(0.2)
    if not path.exists():
        raise CliError(f"no log for {args.task_id} try {args.try_number or 'latest'} of run {args.run_id} at {path}; "
                       f"the attempt has not started")
    return 0


def _attempt_over(env: Any, key: Any, try_number: int | None) -> bool:
    from nbflow.runtime import api
    from nbflow.store import session_scope
    with session_scope(env.readers) as session:
        row = api.ti_rows.get_task_instance(session, key)
    if row is None:
        return True
    if try_number is not None and row.try_number > try_number:
        return True
    return row.state not in ("running", "queued", None, "up_for_retry", "scheduled")
