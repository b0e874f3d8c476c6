"""Data on stdout: aligned tables for people, `--output json` for scripts."""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

OUTPUT_FORMATS = ("table", "json")


def cell(value: Any) -> str:
    """A value as table text: lists joined with commas, booleans and None in lower case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(cell(item) for item in value)
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as left-aligned columns under a header and a rule; the last column is not padded."""
    texts = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(text[i]) for text in texts]) for i, column in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(text) for text in texts)]) + "\n"


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, file: TextIO | None = None) -> None:
    (file or sys.stdout).write(format_table(rows, columns))


def print_json(data: Any, *, file: TextIO | None = None) -> None:
    out = file or sys.stdout
    json.dump(data, out, default=str)
    out.write("\n")


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], output: str, *,
         empty_message: str = "") -> None:
    """`rows` as JSON (every key) or as a table of `columns`; an empty table prints `empty_message` to stderr."""
    if output == "json":
        print_json([dict(row) for row in rows])
    elif rows:
        print_table(rows, columns)
    elif empty_message:
        print(empty_message, file=sys.stderr)
