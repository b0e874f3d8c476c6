"""`nbflow rotate-fernet-key`: re-encrypt the stored secrets with the first key of core.fernet_key.

Rotating a key: put the new key first (`NBFLOW__CORE__FERNET_KEY=new,old`), run this command,
then drop the old key. Everything is re-encrypted in one transaction, so a value that no
configured key decrypts stops the command with nothing changed.
"""
from __future__ import annotations

import argparse
import sys

from nbflow.cli.arguments import add_output
from nbflow.cli.loading import open_env
from nbflow.cli.output import emit
from nbflow.configuration import Config


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "rotate-fernet-key", parents=[common],
        help="re-encrypt stored connection passwords, extras, variables and encrypted XComs with the first key "
             "of core.fernet_key",
        description="Re-encrypt every stored connection password, extra and variable value with the first of the "
                    "comma-separated keys in core.fernet_key (NBFLOW__CORE__FERNET_KEY=new,old); the other keys "
                    "only decrypt. Afterwards the old keys can be removed.")
    add_output(parser)
    parser.set_defaults(run=rotate_fernet_key)


def rotate_fernet_key(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.runtime import api
    result = api.rotate_fernet_key(open_env(conf, database=False))
    emit([{"connections": result.connections, "variables": result.variables, "xcoms": result.xcoms}],
         ["connections", "variables", "xcoms"], args.output)
    advice = ("; the other key(s) in core.fernet_key can now be removed" if result.keys > 1 else
              "; core.fernet_key holds only this key (to rotate, put a new key first: NEW,OLD)")
    print(f"re-encrypted {result.connections} connection(s), {result.variables} variable(s) and {result.xcoms} "
          f"XCom(s) with the first "
          f"Fernet key{advice}", file=sys.stderr)
    return 0
