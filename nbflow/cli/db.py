"""`nbflow db init|upgrade|reset|check`: the metadata database's schema (SQLite by default, or Postgres)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from nbflow.cli.arguments import add_output
from nbflow.cli.errors import CliError
from nbflow.cli.loading import open_env
from nbflow.cli.output import emit
from nbflow.configuration import Config


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    noun = commands.add_parser("db", parents=[common], help="create, upgrade, reset and check the metadata database")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in (("init", "create the schema (or upgrade it) and the default pool"),
                       ("upgrade", "upgrade the schema to the newest revision"),
                       ("check", "whether the database answers and is at the newest revision; exit 1 if not")):
        parser = verbs.add_parser(verb, parents=[common], help=text)
        add_output(parser)
        parser.set_defaults(run=run_db, action=verb)
    parser = verbs.add_parser("reset", parents=[common], help="drop every nbflow table and its data, then init")
    parser.add_argument("-y", "--yes", action="store_true", help="confirm that all data is to be deleted")
    add_output(parser)
    parser.set_defaults(run=run_db, action="reset")


def run_db(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    if args.action == "reset" and not args.yes:
        raise CliError("db reset deletes every DAG run, task instance and XCom; add --yes to confirm")
    env = open_env(conf, database=False)
    action = {"init": api.init_database, "upgrade": api.upgrade_database, "reset": api.reset_database,
              "check": api.check_database}[args.action]
    status = action(env)
    row: dict[str, Any] = asdict(status)
    emit([row], ["url", "backend", "reachable", "current_revision", "head_revision", "at_head", "error"], args.output)
    if not (status.reachable and status.at_head):
        raise CliError(f"metadata database {status.url} is "
                       + (f"unreachable: {status.error}" if not status.reachable else
                          f"at revision {status.current_revision or 'none'}, not {status.head_revision}; "
                          f"run `nbflow db upgrade`"))
    if args.action != "check":
        print(f"metadata database {status.url} is at revision {status.head_revision}", file=sys.stderr)
        key = api.ensure_fernet_key(env)  # stored secrets are encrypted with it (core.fernet_key, else $NBFLOW_HOME)
        if key.generated:
            print(f"generated a Fernet key in {key.path}; back it up: the connections and variables "
                  f"stored in the database cannot be read without it", file=sys.stderr)
    return 0
