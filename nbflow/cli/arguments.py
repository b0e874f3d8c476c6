"""Arguments several commands share, checked once here: logical dates, `--conf` JSON, `--output`."""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from nbflow.cli.errors import CliError
from nbflow.cli.output import OUTPUT_FORMATS

CONF_EXAMPLE = """'{"day": 3}'"""


def add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default="table",
                        help="table for people (default), json for scripts")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logical_date", nargs="?", default=None, metavar="LOGICAL_DATE",
                        help="the run's logical date, e.g. 2025-01-02 or 2025-01-02T06:00:00+00:00 (default: now)")
    parser.add_argument("-c", "--conf", default=None, metavar="JSON",
                        help=f"the run's conf, one JSON object, e.g. {CONF_EXAMPLE}")


def parse_logical_date(text: str | None) -> datetime | None:
    """An aware UTC datetime from an ISO 8601 date or timestamp (naive means UTC); None stays None."""
    if text is None:
        return None
    from nbflow.utils.timezone import coerce_datetime
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"logical date {text!r} is not a date; use YYYY-MM-DD or an ISO 8601 timestamp, "
                       f"e.g. 2025-01-02 or 2025-01-02T06:00:00+00:00") from None
    return coerce_datetime(value)


def parse_conf(text: str | None) -> dict[str, Any]:
    """`--conf`: one JSON object; anything else is a one-line error saying where the JSON broke."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        problem = err.msg.replace(" delimiter", "")
        problem = problem[:1].lower() + problem[1:]
        raise CliError(f"--conf is not valid JSON (line {err.lineno}, column {err.colno}: {problem}); "
                       f"pass one JSON object, e.g. {CONF_EXAMPLE}") from None
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
                type(None): "null"}.get(type(value), type(value).__name__)
        raise CliError(f"--conf must be a JSON object, got {kind}; pass one JSON object, e.g. {CONF_EXAMPLE}")
    return value
