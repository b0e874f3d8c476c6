"""`nbflow tasks xcom DAG_ID TASK_ID`: show what a task instance pushed, with every known secret masked."""
from __future__ import annotations

import argparse
import json

from nbflow.cli.arguments import add_output
from nbflow.cli.loading import open_env
from nbflow.cli.output import emit
from nbflow.configuration import Config


def register_xcom_verb(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = verbs.add_parser("xcom", parents=[common], help="show a task's XCom value, secrets masked",
                              description="Show what a task instance pushed under KEY (default return_value) in "
                                          "run RUN_ID (default: the DAG's latest run). Connection passwords and "
                                          "sensitive variables in the value are shown as ***.")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("--run-id", default=None, metavar="RUN_ID", help="the run (default: the latest)")
    parser.add_argument("--key", default="return_value", metavar="KEY", help="the XCom key (default return_value)")
    parser.add_argument("--map-index", type=int, default=-1, metavar="N", help="for a mapped task: which instance")
    add_output(parser)
    parser.set_defaults(run=show_xcom)


def show_xcom(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api

    entry = api.get_xcom(open_env(conf), args.dag_id, args.task_id, args.run_id, map_index=args.map_index,
                         key=args.key, masked=True)
    row = {"dag_id": entry.dag_id, "run_id": entry.run_id, "task_id": entry.task_id, "map_index": entry.map_index,
           "key": entry.key, "value": entry.value if args.output == "json" else json.dumps(entry.value, default=str),
           "timestamp": entry.timestamp}
    emit([row], ["task_id", "run_id", "key", "value"], args.output)
    return 0
