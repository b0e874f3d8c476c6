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

NOUNS = ("nbflow.cli.version", "nbflow.cli.db", "nbflow.cli.dags", "nbflow.cli.tasks", "nbflow.cli.scheduler",
         "nbflow.cli.connections", "nbflow.cli.variables", "nbflow.cli.rotate")
NO_CONFIG = frozenset({"version"})  # commands that must work even with a broken nbflow.toml


def build_parser() -> argparse.ArgumentParser:
    # `--verbose` is accepted before and after the command; SUPPRESS keeps a later parser from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback when a command fails")
    parser = argparse.ArgumentParser(prog="nbflow", description="nbflow: Airflow-compatible workflows, at home in "
                                     "Jupyter. `nbflow COMMAND --help` describes a command.")
    parser.add_argument("-v", "--verbose", action="store_true", default=False,
                        help="show the traceback when a command fails")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in NOUNS:
        importlib.import_module(name).register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv` (default: sys.argv[1:]) and return the exit code."""
    args = build_parser().parse_args(argv)  # bad arguments: usage + one `error:` line, exit 2
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
