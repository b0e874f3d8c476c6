"""`nbflow scheduler` and `nbflow standalone`: run DAGs on their schedules until stopped."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from nbflow.configuration import Config


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("scheduler", parents=[common], help="run the scheduler until stopped (SIGTERM, Ctrl-C)")
    parser.add_argument("-n", "--num-runs", type=num_runs, default=None, metavar="N",
                        help="stop after N scheduler loops; -1 (the default) runs until stopped")
    parser.add_argument("--until-idle", action="store_true", help="stop once no DAG run is queued or running")
    parser.add_argument("--executor", default=None, help="override core.executor (local, sequential)")
    parser.set_defaults(run=run_scheduler, upgrade=False)
    parser = commands.add_parser("standalone", parents=[common],
                                 help="upgrade the database, then run the scheduler (everything on this machine)")
    parser.add_argument("--until-idle", action="store_true", help="stop once no DAG run is queued or running")
    parser.set_defaults(run=run_scheduler, upgrade=True, num_runs=None, executor=None)


def num_runs(text: str) -> int | None:
    """`-n N`: a positive number of loops, or -1 for no limit (Airflow's convention); None means no limit."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == -1:
        return None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of scheduler loops of 1 or more, or -1 for no limit; "
                                         f"got {text!r}")
    return value


def run_scheduler(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api

    env = api.Environment.from_config(conf)
    if args.upgrade:
        api.require_database(env, initialised=False)
        api.init_database(env)
    else:
        api.require_database(env)
    api.register_secrets(env)  # run errors and news it logs never show a stored secret
    scheduler = api.make_scheduler(env, executor=args.executor)
    if threading.current_thread() is threading.main_thread():  # handlers only where Python allows them
        signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
        signal.signal(signal.SIGINT, lambda *_: scheduler.stop())
    _print_scheduler_news()
    print(f"nbflow scheduler: DAGs from {conf.dags_folder}, database {api.database_url(env)}, "
          f"{scheduler.executor.name} executor (parallelism {scheduler.executor.parallelism}), "
          f"task logs under {conf.log_folder}; stop with Ctrl-C", file=sys.stderr)
    scheduler.run(num_runs=args.num_runs, until_idle=args.until_idle)
    print("nbflow scheduler: stopped", file=sys.stderr)
    return 0


def _print_scheduler_news() -> None:
    """Finished runs and broken DAG files, one line each on stderr, as the scheduler notices them."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    from nbflow.utils.masking import MaskedFormatter
    handler.setFormatter(MaskedFormatter("nbflow scheduler: %(message)s"))
    logger = logging.getLogger("nbflow.scheduler")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
