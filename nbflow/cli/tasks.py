"""`nbflow tasks ...`: run one task of a DAG in this process, ignoring its dependencies."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from nbflow.cli.arguments import add_run_arguments, parse_conf, parse_logical_date
from nbflow.cli.errors import CliError
from nbflow.cli.loading import find_dag
from nbflow.configuration import Config

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.run_info import DagRunInfo
    from nbflow.runtime.xcom import XComStore


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

    from nbflow.cli.task_runs import register_verbs
    register_verbs(verbs, common)  # run, clear, states-for-dag-run, logs


def _mapped_kwargs(dag: "DAG", task: Any, run: "DagRunInfo", params: dict[str, Any], xcoms: "XComStore",
                   map_index: int | None) -> dict[str, Any]:
    """The arguments of instance `map_index` of a mapped task, when its input needs no upstream task."""
    from nbflow.exceptions import NbflowException
    from nbflow.runtime.task_instance import RuntimeTaskInstance
    ti = RuntimeTaskInstance(task=task, run=run, map_index=-1, try_number=1, max_tries=0, xcoms=xcoms)
    try:
        expansion = task.expansion({"ti": ti, "params": params, "dag_run": run, "run_id": run.run_id})
    except NbflowException as err:
        raise CliError(f"task {task.task_id!r} is mapped over an upstream task's output, which `tasks test` "
                       f"does not run ({err}); use `nbflow dags test {dag.dag_id}` instead") from None
    if map_index is None or not 0 <= map_index < len(expansion):
        given = "" if map_index is None else f"--map-index {map_index} is out of range; "
        raise CliError(f"task {task.task_id!r} is mapped into {len(expansion)} instance(s); {given}"
                       f"pass --map-index N with N from 0 to {len(expansion) - 1}")
    return expansion[map_index]


def test_task(args: argparse.Namespace, conf: Config) -> int:
    logical_date = parse_logical_date(args.logical_date)
    run_conf = parse_conf(args.conf)
    dag = find_dag(conf, args.dag_id)
    from nbflow.exceptions import TaskNotFound
    try:
        task = dag.get_task(args.task_id)
    except TaskNotFound as err:
        raise CliError(str(err)) from None
    from nbflow.runtime.inprocess import make_run_info
    from nbflow.runtime.task_runner import AttemptRequest, run_attempt
    from nbflow.runtime.xcom import MemoryXComStore
    run = make_run_info(dag, logical_date, run_conf)
    params = dag.params.validate(run.conf, where=f"DAG {dag.dag_id!r}")
    xcoms = MemoryXComStore()
    map_index = -1
    if task.is_mapped:
        kwargs = _mapped_kwargs(dag, task, run, params, xcoms, args.map_index)
        map_index = args.map_index
        task = task.unmap(kwargs)
    elif args.map_index is not None:
        raise CliError(f"task {task.task_id!r} is not mapped; leave out --map-index")
    request = AttemptRequest(task=task, run=run, map_index=map_index, try_number=1, params=params,
                             log_folder=conf.log_folder, max_xcom_size=conf.getint("core", "max_xcom_size"))
    outcome = run_attempt(request, xcoms, echo=sys.stdout)
    sys.stdout.flush()
    label = task.task_id + (f"[{map_index}]" if map_index >= 0 else "")
    if outcome.state == "failed":
        raise CliError(f"task {label} failed: {(outcome.error or 'no error message').splitlines()[0]}; "
                       f"log: {outcome.log_path}")
    print(f"task {label}: {outcome.state} in {outcome.duration:.3f} s; log: {outcome.log_path}", file=sys.stderr)
    return 0
