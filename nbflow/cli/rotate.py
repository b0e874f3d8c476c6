"""`nbflow rotate-fernet-key`: re-encrypt the stored secrets with the first key of core.fernet_key.

Rotating a key: put the new key first (`NBFLOW__CORE__FERNET_KEY=new,old`), run this command,
then drop the old key. Everything is re-encrypted in one transaction, so a value that no
configured key decrypts stops the command with nothing changed.
"""
from __future__ import annotations

import argparse
import sys

from nbflow.cli.arguments import add_output
from nbflow.cli.errors import CliError
from nbflow.cli.output import emit
from nbflow.configuration import Config


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "rotate-fernet-key", parents=[common],
        help="re-encrypt stored connection passwords, extras and variables with the first key of core.fernet_key",
        description="Re-encrypt every stored connection password, extra and variable value with the first of the "
                    "comma-separated keys in core.fernet_key (NBFLOW__CORE__FERNET_KEY=new,old); the other keys "
                    "only decrypt. Afterwards the old keys can be removed.")
    add_output(parser)
    parser.set_defaults(run=rotate_fernet_key)


def rotate_fernet_key(args: argparse.Namespace, conf: Config) -> int:
    from sqlalchemy.exc import DBAPIError

    from nbflow.secrets.backends.metastore import rotate_fernet_key as rotate
    from nbflow.secrets.fernet import ensure_fernet_key, load_fernet
    from nbflow.store.engine import make_engine, safe_url

    keys = [key for key in ensure_fernet_key(conf).split(",") if key.strip()]
    fernet = load_fernet(",".join(keys))
    engine = make_engine(conf.sql_alchemy_conn)
    try:
        result = rotate(engine, fernet)
    except DBAPIError as err:
        problem = str(err.orig or err).strip().splitlines()[0]
        hint = ("; run `nbflow db init` first" if "no such table" in problem.lower() or "does not exist" in
                problem.lower() else "")
        raise CliError(f"cannot rotate the Fernet key in {safe_url(conf.sql_alchemy_conn)}: {problem}{hint}") from None
    finally:
        engine.dispose()
    emit([{"connections": result.connections, "variables": result.variables}], ["connections", "variables"],
         args.output)
    advice = ("; the other key(s) in core.fernet_key can now be removed" if len(keys) > 1 else
              "; core.fernet_key holds only this key (to rotate, put a new key first: NEW,OLD)")
    print(f"re-encrypted {result.connections} connection(s) and {result.variables} variable(s) with the first "
          f"Fernet key{advice}", file=sys.stderr)
    return 0
