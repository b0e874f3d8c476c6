"""The nbflow cell magics as data: which cells define a DAG, and what their magic lines say.

One parser per magic, shared by the IPython magics (where a bad line becomes a UsageError under the
cell) and by the static notebook reader (where it becomes an import error naming the cell), so a
notebook DAG means the same thing in a kernel and in the scheduler.
"""
from __future__ import annotations

import argparse
import functools
import json
import shlex
from dataclasses import dataclass
from typing import Any

from nbflow.exceptions import MagicSyntaxError

CELL_MAGICS = ("dag", "setup", "task", "bash_task")
LINE_MAGICS = ("notebook_task",)
TASK_MAGICS = ("task", "bash_task", "notebook_task")


@dataclass(frozen=True, slots=True)
class MagicCell:
    """One definition: `magic` is dag, setup, task, bash_task or notebook_task; `line` its arguments;
    `body` the rest of the cell (empty for the line magic); `cell` its 1-based number in a notebook."""

    magic: str
    line: str
    body: str = ""
    cell: int | None = None

    def __post_init__(self) -> None:
        # A kernel hands a cell magic its body with a trailing newline, nbformat without: the same cell
        # must be the same text both ways (drift compares them).
        object.__setattr__(self, "body", self.body.rstrip())
        object.__setattr__(self, "line", self.line.strip())

    @property
    def where(self) -> str:
        head = f"%%{self.magic}" if self.magic in CELL_MAGICS else f"%{self.magic}"
        return f"cell {self.cell} ({head} {self.line.strip()})" if self.cell else f"{head} {self.line.strip()}"

    def arguments(self) -> argparse.Namespace:
        return parse_line(self.magic, self.line)

    def to_dict(self) -> dict[str, Any]:
        return {"magic": self.magic, "line": self.line, "body": self.body, "cell": self.cell}


class _MagicParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, naming the magic."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise MagicSyntaxError(f"{self.prog}: {message}")


def _task_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("--dag", metavar="DAG_ID", help="the DAG it belongs to (default: the last %%%%dag)")
    parser.add_argument("--upstream", nargs="*", default=[], metavar="TASK", help="tasks that run before it")
    parser.add_argument("--retries", type=int, metavar="N")
    parser.add_argument("--retry-delay", type=float, metavar="SECONDS")
    parser.add_argument("--trigger-rule", metavar="RULE", help="all_success (default), all_done, one_failed, ...")
    parser.add_argument("--pool", metavar="POOL")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="execution_timeout of one attempt")
    parser.add_argument("--email", metavar="ADDRESSES", help="comma-separated addresses for failure emails")
    parser.add_argument("--email-on-failure", action=argparse.BooleanOptionalAction, default=None,
                        help="e-mail when it fails for good (default: yes, when --email is given)")
    parser.add_argument("--email-on-retry", action=argparse.BooleanOptionalAction, default=None,
                        help="e-mail at each failed try that will be retried (default: yes, as in Airflow)")
    parser.add_argument("--run", action="store_true", help="run the task now (in a child process), show its output")


def _build_parsers() -> dict[str, argparse.ArgumentParser]:
    def new(magic: str, description: str) -> argparse.ArgumentParser:
        prefix = "%%" if magic in CELL_MAGICS else "%"
        parser = _MagicParser(prog=f"{prefix}{magic}", description=description, add_help=False)
        parser.add_argument("-h", "--help", action="store_true", help="show this help")
        return parser

    parsers: dict[str, argparse.ArgumentParser] = {}
    dag = new("dag", "Declare a DAG; the cell body is ordinary DAG code (operators, @task) run in its context.")
    dag.add_argument("dag_id", metavar="DAG_ID")
    dag.add_argument("--schedule", metavar="S", help="cron string, @preset or None (default: None, manual only)")
    dag.add_argument("--start-date", metavar="DATE", help="ISO date (default 2025-01-01, UTC)")
    dag.add_argument("--catchup", action="store_true", help="run every missed interval since the start date")
    dag.add_argument("--retries", type=int, metavar="N", help="default retries of its tasks")
    dag.add_argument("--retry-delay", type=float, metavar="SECONDS", help="default retry delay of its tasks")
    dag.add_argument("--max-active-runs", type=int, metavar="N")
    dag.add_argument("--tags", metavar="a,b", help="comma-separated tags")
    dag.add_argument("--default-args", metavar="JSON", help="default_args as a JSON object")
    dag.add_argument("--description", metavar="TEXT")
    parsers["dag"] = dag

    setup = new("setup", "Imports and helpers every cell task of the DAG runs first; also runs now.")
    setup.add_argument("--dag", metavar="DAG_ID", help="the DAG it belongs to (default: the last %%%%dag)")
    parsers["setup"] = setup

    task = new("task", "The cell body is a task. Upstream return values are variables named after the upstream "
                       "tasks, `context` is the task context, the last expression is the return value (XCom).")
    _task_options(task)
    parsers["task"] = task

    bash = new("bash_task", "The cell body is a bash script, run as a BashOperator.")
    _task_options(bash)
    parsers["bash_task"] = bash

    notebook = new("notebook_task", "Run a notebook with papermill-style parameters as a task.")
    _task_options(notebook)
    notebook.add_argument("--notebook", required=True, metavar="PATH", help="the notebook to execute")
    notebook.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                          help="a parameter injected into the notebook (repeatable)")
    parsers["notebook_task"] = notebook
    return parsers


_PARSERS: dict[str, argparse.ArgumentParser] | None = None


def parser_for(magic: str) -> argparse.ArgumentParser:
    global _PARSERS
    if _PARSERS is None:
        _PARSERS = _build_parsers()
    return _PARSERS[magic]


def parse_line(magic: str, line: str) -> argparse.Namespace:
    """The magic's arguments; MagicSyntaxError names the magic and what is wrong."""
    return argparse.Namespace(**vars(_parse_line(magic, line)))  # a copy: the cached one stays as parsed


@functools.lru_cache(maxsize=4096)
def _parse_line(magic: str, line: str) -> argparse.Namespace:
    # Building a DAG reads each cell's line three times (grouping, the DAG, its edges); a 100-cell notebook
    # spent 30 ms of its 70 ms parse in argparse before this cache (benchmarks/parse_ipynb.py).
    try:
        words = shlex.split(line, comments=False)
    except ValueError as err:
        raise MagicSyntaxError(f"%{'%' if magic in CELL_MAGICS else ''}{magic}: {err} in {line.strip()!r}") from None
    if "-h" in words or "--help" in words:
        return argparse.Namespace(help=True)  # help first, whatever else the line lacks
    args = parser_for(magic).parse_args(words)
    if getattr(args, "default_args", None):
        try:
            value = json.loads(args.default_args)
        except ValueError as err:
            raise MagicSyntaxError(f"%%dag: --default-args is not valid JSON ({err}); pass one JSON object, "
                                   f"e.g. '{{\"owner\": \"me\"}}'") from None
        if not isinstance(value, dict):
            raise MagicSyntaxError("%%dag: --default-args must be a JSON object")
    return args


def parameter_value(text: str) -> Any:
    """A `-p NAME VALUE` value: JSON when it parses (numbers, true/false, lists), else the string."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def magic_cells_of(source: str, cell: int | None = None) -> list[MagicCell]:
    """The definitions in one cell's source: a cell magic on its first line, or `%notebook_task` lines."""
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return []
    head = lines[first].strip()
    if head.startswith("%%"):
        name, _, rest = head[2:].partition(" ")
        name = name.removeprefix("nbflow.")
        if name in CELL_MAGICS:
            return [MagicCell(name, rest, "\n".join(lines[first + 1:]), cell)]
        return []
    found = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("%"):
            name, _, rest = stripped[1:].partition(" ")
            name = name.removeprefix("nbflow.")
            if name in LINE_MAGICS:
                found.append(MagicCell(name, rest, "", cell))
    return found


__all__ = ["CELL_MAGICS", "LINE_MAGICS", "MagicCell", "TASK_MAGICS", "magic_cells_of", "parameter_value",
           "parse_line", "parser_for"]
