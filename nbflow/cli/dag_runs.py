"""`nbflow dags trigger|pause|unpause|list-runs|state|backfill`: DAG runs in the metadata database."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from nbflow.cli.arguments import add_output, parse_conf, parse_logical_date
from nbflow.cli.errors import CliError
from nbflow.cli.loading import open_env
from nbflow.cli.output import emit
from nbflow.configuration import Config
from nbflow.utils.state import RUN_FINISHED_STATES, DagRunState

RUN_COLUMNS = ["dag_id", "run_id", "run_type", "state", "logical_date", "start_date", "end_date", "failed_task"]


def register_verbs(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = verbs.add_parser("trigger", parents=[common], help="queue a manual run for the scheduler")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("-c", "--conf", default=None, metavar="JSON", help="the run's conf, one JSON object")
    parser.add_argument("-r", "--run-id", default=None, help="the run's id (default: manual__<logical date>)")
    parser.add_argument("-l", "--logical-date", default=None, help="the run's logical date (default: now)")
    add_output(parser)
    parser.set_defaults(run=trigger)

    for verb, paused in (("pause", True), ("unpause", False)):
        parser = verbs.add_parser(verb, parents=[common], help=f"{verb} a DAG: the scheduler "
                                  f"{'stops creating and running' if paused else 'creates and runs'} its runs")
        parser.add_argument("dag_id", metavar="DAG_ID")
        parser.set_defaults(run=set_paused, paused=paused)

    parser = verbs.add_parser("list-runs", parents=[common], help="a DAG's runs, newest first")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("--state", default=None, choices=[state.value for state in DagRunState])
    parser.add_argument("--limit", type=int, default=100)
    add_output(parser)
    parser.set_defaults(run=list_runs)

    parser = verbs.add_parser("state", parents=[common], help="the state of one run (by run id or logical date)")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("run_ref", metavar="RUN_ID_OR_LOGICAL_DATE")
    parser.set_defaults(run=run_state)

    parser = verbs.add_parser("backfill", parents=[common],
                              help="create and run one run per schedule interval between two dates")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("-s", "--start-date", required=True, help="first logical date (inclusive)")
    parser.add_argument("-e", "--end-date", required=True, help="last logical date (inclusive)")
    parser.add_argument("-c", "--conf", default=None, metavar="JSON", help="conf of every backfill run")
    parser.add_argument("--executor", default=None, help="override core.executor (local, sequential)")
    parser.set_defaults(run=backfill)


def _row(run: Any) -> dict[str, Any]:
    return {column: getattr(run, column) for column in RUN_COLUMNS}


def trigger(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    run_conf = parse_conf(args.conf)
    logical_date = parse_logical_date(args.logical_date)
    env = open_env(conf)
    run = api.trigger_dag(env, args.dag_id, conf=run_conf, run_id=args.run_id, logical_date=logical_date)
    emit([_row(run)], RUN_COLUMNS, args.output)
    print(f"queued run {run.run_id} of {args.dag_id}; a running `nbflow scheduler` picks it up", file=sys.stderr)
    return 0


def set_paused(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    api.set_paused(open_env(conf), args.dag_id, args.paused)
    print(f"DAG {args.dag_id} is {'paused' if args.paused else 'unpaused'}", file=sys.stderr)
    return 0


def list_runs(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    runs = api.list_runs(open_env(conf), args.dag_id, state=args.state, limit=args.limit)
    emit([_row(r) for r in runs], RUN_COLUMNS, args.output, empty_message=f"DAG {args.dag_id} has no runs")
    return 0


def run_state(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    env = open_env(conf)
    try:
        when = parse_logical_date(args.run_ref)
    except CliError:
        when = None
    run = api.find_run(env, args.dag_id, run_id=args.run_ref, logical_date=when)
    if run is None:
        raise CliError(f"DAG {args.dag_id!r} has no run {args.run_ref!r} (neither a run id nor a logical date of one)")
    print(run.state)
    return 0


class _Progress:
    """A progress bar on a terminal, one line per finished run elsewhere."""

    def __init__(self, env: Any, dag_id: str, run_ids: list[str]) -> None:
        self.env, self.dag_id, self.run_ids = env, dag_id, run_ids
        self.reported: set[str] = set()
        self.tty = sys.stderr.isatty()

    def done(self) -> bool:
        from nbflow.runtime import api
        runs = {r.run_id: r for r in api.list_runs(self.env, self.dag_id, limit=100_000) if r.run_id in self.run_ids}
        finished = [r for r in runs.values() if r.state in RUN_FINISHED_STATES]
        if self.tty:
            width = 30
            filled = width * len(finished) // max(len(self.run_ids), 1)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {len(finished)}/{len(self.run_ids)} runs")
            sys.stderr.flush()
        for run in finished:
            if run.run_id not in self.reported:
                self.reported.add(run.run_id)
                if not self.tty:
                    print(f"{len(self.reported)}/{len(self.run_ids)} {run.run_id} {run.state}", file=sys.stderr)
        return len(finished) == len(self.run_ids)


def backfill(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    start, end = parse_logical_date(args.start_date), parse_logical_date(args.end_date)
    if start is None or end is None or start > end:
        raise CliError(f"--start-date {args.start_date} is after --end-date {args.end_date}")
    run_conf = parse_conf(args.conf)
    env = open_env(conf)
    runs = api.create_backfill(env, args.dag_id, start=start, end=end, conf=run_conf)
    if not runs:
        raise CliError(f"DAG {args.dag_id!r} has no schedule interval starting between {start:%Y-%m-%d %H:%M} "
                       f"and {end:%Y-%m-%d %H:%M}")
    print(f"backfilling {args.dag_id}: {len(runs)} run(s) from {runs[0].logical_date:%Y-%m-%d %H:%M} "
          f"to {runs[-1].logical_date:%Y-%m-%d %H:%M}", file=sys.stderr)
    progress = _Progress(env, args.dag_id, [r.run_id for r in runs])
    scheduler = api.make_scheduler(env, executor=args.executor)
    scheduler.on_loop = lambda stats: scheduler.stop() if progress.done() else None
    scheduler.run()
    progress.done()
    if progress.tty:
        sys.stderr.write("\n")
    final = [r for r in api.list_runs(env, args.dag_id, limit=100_000) if r.run_id in set(progress.run_ids)]
    failed = [r for r in final if r.state != DagRunState.SUCCESS]
    if failed:
        raise CliError(f"backfill of {args.dag_id}: {len(failed)} of {len(final)} run(s) failed, first "
                       f"{failed[-1].run_id} (task {failed[-1].failed_task})")
    print(f"backfill of {args.dag_id}: {len(final)} run(s) succeeded", file=sys.stderr)
    return 0



