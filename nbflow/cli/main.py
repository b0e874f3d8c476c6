"""`nbflow`: parse the command line, load the configuration once, run one command, fail in one line.

Each noun lives in its own module with a `register(commands, common)` function; importing one must stay
cheap (argparse only), so `nbflow --help` and `nbflow version` start fast. Commands import what they
need inside themselves.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from nbflow.cli.errors import report_failure

# The module that registers each command. `nbflow dags list` builds the `dags` parser only: building all
# of them (argparse asks gettext for every help text) and importing their modules costs ~20 ms of every
# call, a fifth of `dags list`'s budget (issue 14). tests/cli/test_main.py checks this map.
COMMANDS = {"version": "nbflow.cli.version", "db": "nbflow.cli.db", "dags": "nbflow.cli.dags",
            "tasks": "nbflow.cli.tasks", "scheduler": "nbflow.cli.scheduler", "standalone": "nbflow.cli.scheduler",
            "connections": "nbflow.cli.connections", "variables": "nbflow.cli.variables",
            "rotate-fernet-key": "nbflow.cli.rotate"}
NOUNS = tuple(dict.fromkeys(COMMANDS.values()))
NO_CONFIG = frozenset({"version"})  # commands that must work even with a broken nbflow.toml


def _command_in(argv: Sequence[str] | None) -> str | None:
    """The command `argv` names (its first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None) if argv is not None else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: only its command's, when it names a known one (help and typos get them all)."""
    # `--verbose` is accepted before and after the command; SUPPRESS keeps a later parser from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback when a command fails")
    parser = argparse.ArgumentParser(prog="nbflow", description="nbflow: Airflow-compatible workflows, at home in "
                                     "Jupyter. `nbflow COMMAND --help` describes a command.")
    parser.add_argument("-v", "--verbose", action="store_true", default=False,
                        help="show the traceback when a command fails")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command = _command_in(argv)
    for name in (COMMANDS[command],) if command in COMMANDS else NOUNS:
        importlib.import_module(name).register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv` (default: sys.argv[1:]) and return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)  # bad arguments: usage + one `error:` line, exit 2
    verbose = bool(getattr(args, "verbose", False))
    try:
        conf = None
        if args.command not in NO_CONFIG:
            from nbflow.configuration import load_config
            conf = load_config()
            from nbflow.secrets.known import apply_sensitive_words, register_environment_secrets
            apply_sensitive_words(conf)
            register_environment_secrets()  # what the command prints, its error line included, hides them
        return int(args.run(args, conf) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nbflow dags list | head`: the reader left; nothing more to say
        # Python's recipe: point stdout at devnull so the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:  # noqa: BLE001 - every failure ends in one line (STYLE §7)
        return report_failure(err, verbose=verbose)


if __name__ == "__main__":
    sys.exit(main())
