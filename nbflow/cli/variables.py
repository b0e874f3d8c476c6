"""`nbflow variables set|get|list|delete|import|export`: variables in the secrets backends (Airflow's shapes).

`get` asks the whole chain of `secrets.backends` (NBFLOW_VAR_<KEY>, Vault, the metadata database);
writes, `list` and `export` work on the backend that stores values. A variable whose key holds a
sensitive word (core.sensitive_var_conn_names) prints as *** unless `--show-secrets`.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nbflow.cli.arguments import add_output
from nbflow.cli.connections import (
    EXPORT_HELP,
    add_format,
    add_show_secrets,
    describe,
    export_format,
    listing_backend,
    open_chain,
    parse_json,
    read_text,
    storing_backend,
    write_export,
    write_out,
)
from nbflow.cli.errors import CliError
from nbflow.cli.output import format_table
from nbflow.configuration import Config

EXISTING_KEY_ACTIONS = ("overwrite", "skip", "fail")


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    noun = commands.add_parser("variables", parents=[common], help="set, get, list, delete, import and export "
                               "variables")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)

    parser = verbs.add_parser("set", parents=[common], help="store a variable in the metadata database "
                              "(encrypted at rest)")
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("value", metavar="VALUE")
    parser.add_argument("--description", metavar="TEXT", help="what the variable is for")
    parser.add_argument("-j", "--json", action="store_true", help="VALUE is JSON: check it and store it as JSON")
    parser.set_defaults(run=set_variable)

    parser = verbs.add_parser("get", parents=[common], help="one variable's value, from the first backend holding it")
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("-d", "--default", metavar="VALUE", default=None,
                        help="print VALUE when the variable does not exist (instead of failing)")
    parser.add_argument("-j", "--json", action="store_true", help="parse the value as JSON and print it indented")
    # Unlike Airflow's, which prints any value: a secret (a sensitive name, or any value of a secrets store such
    # as Vault or a custom backend) is *** here as in every other output, unless the user asks to see it.
    add_show_secrets(parser, "print a secret value (a sensitive variable, or any value from a secrets store "
                     "such as Vault or a custom backend) instead of ***")
    parser.set_defaults(run=get_variable)

    parser = verbs.add_parser("list", parents=[common], help="the variables stored in the metadata database")
    add_output(parser)
    add_show_secrets(parser, "print sensitive variables' values instead of ***")
    parser.set_defaults(run=list_variables)

    parser = verbs.add_parser("delete", parents=[common], help="remove a variable from the metadata database")
    parser.add_argument("key", metavar="KEY")
    parser.set_defaults(run=delete_variable)

    parser = verbs.add_parser("import", parents=[common], help="store the variables of a .json, .yaml or .env file")
    parser.add_argument("file", metavar="FILE")
    add_format(parser, "the file's format (default: from its suffix)")
    parser.add_argument("-a", "--action-on-existing-key", choices=EXISTING_KEY_ACTIONS, default="overwrite",
                        help="what to do with a key that already exists: overwrite it (default), skip it, or fail "
                        "before storing anything")
    parser.set_defaults(run=import_variables)

    parser = verbs.add_parser("export", parents=[common], help="write the stored variables to FILE or - (stdout)",
                              description=f"Write every variable stored in the metadata database; "
                              f"{EXPORT_HELP.replace('passwords and extras', 'values of sensitive variables')}.")
    parser.add_argument("file", metavar="FILE|-")
    add_format(parser, "json, yaml or env (default: from FILE's suffix; json for -)")
    add_show_secrets(parser, "print sensitive values when writing to - (a FILE always gets them)")
    parser.set_defaults(run=export_variables)


def set_variable(args: argparse.Namespace, conf: Config) -> int:
    value = args.value
    if args.json:  # stored as Variable.set(..., serialize_json=True) stores it
        value = json.dumps(parse_json(value, "VALUE", """with --json, pass JSON, e.g. '{"day": 3}'"""), indent=2)
    chain = open_chain(conf)
    store = storing_backend(chain, "variable")
    chain.set_variable(args.key, value, description=args.description)
    print(f"set variable {args.key!r} in {describe(store)}", file=sys.stderr)
    return 0


def get_variable(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.secrets.chain import NOTSET
    from nbflow.utils.masking import MASK, masker

    chain = open_chain(conf)
    missing = object()
    value = chain.get_variable(args.key, NOTSET if args.default is None else missing)  # a miss names the backends
    if value is missing:
        write_out(args.default + "\n", show_secrets=True)  # the caller's own text, not a stored secret
        return 0
    if args.json:
        parsed = parse_json(value, f"variable {args.key!r}", "read it without --json")
        if not args.show_secrets:  # sensitive fields nested in it are *** too
            parsed = MASK if masker.is_sensitive(args.key) else masker.redact_value(parsed)
        text = json.dumps(parsed, indent=2)
    else:
        text = shown_value(args.key, value, show_secrets=args.show_secrets) or ""
    write_out(text + "\n", show_secrets=args.show_secrets)
    return 0


def shown_value(key: str, value: str | None, *, show_secrets: bool) -> str | None:
    """A stored value for display: *** for a sensitive key unless shown.

    The sensitive fields of a JSON value (`{"db": {"password": ...}}`) are registered with the
    masker, as `Variable.get(..., deserialize_json=True)` does, so the output hides them too.
    """
    from nbflow.secrets.variable import _mask_nested
    from nbflow.utils.masking import MASK, masker

    if not value or show_secrets:
        return value
    if masker.is_sensitive(key):
        return MASK
    if value.lstrip().startswith(("{", "[")):
        try:
            _mask_nested(key, json.loads(value))
        except json.JSONDecodeError:
            pass
    return value


def list_variables(args: argparse.Namespace, conf: Config) -> int:
    store = listing_backend(open_chain(conf), "variable")
    rows = [{"key": record.key, "value": shown_value(record.key, record.value, show_secrets=args.show_secrets),
             "description": record.description} for record in store.list_variables()]
    if args.output == "json":
        write_out(json.dumps(rows) + "\n", show_secrets=args.show_secrets)
    elif rows:
        table = [{**row, "value": _one_line(row["value"])} for row in rows]
        write_out(format_table(table, ["key", "value", "description"]), show_secrets=args.show_secrets)
    else:
        print(f"no variables stored in {describe(store)}", file=sys.stderr)
    return 0


def _compact_json(value: str | None) -> str | None:
    """A JSON value that spans lines (`set --json` stores it indented) on one line; other values as they are."""
    if value is None or "\n" not in value:
        return value
    try:
        return json.dumps(json.loads(value))
    except json.JSONDecodeError:
        return value


def _one_line(value: str | None) -> str | None:
    """A value on one table line: JSON compacted, other line breaks shown as \\n."""
    value = _compact_json(value)
    return None if value is None else value.replace("\n", "\\n")


def delete_variable(args: argparse.Namespace, conf: Config) -> int:
    chain = open_chain(conf)
    store = storing_backend(chain, "variable")
    if not chain.delete_variable(args.key):
        elsewhere = chain.get_variable(args.key, None) is not None
        raise CliError(f"variable {args.key!r} is not stored in {describe(store)}"
                       + ("; it comes from another secrets backend (e.g. NBFLOW_VAR_"
                          f"{args.key.upper()}), which nbflow does not change" if elsewhere else ""))
    print(f"deleted variable {args.key!r} from {describe(store)}", file=sys.stderr)
    return 0


def import_variables(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.secrets.files import format_of, variables_from_text

    text = read_text(args.file)
    values = variables_from_text(text, format_of(args.file, args.format), source=args.file)
    chain = open_chain(conf)
    store = storing_backend(chain, "variable")
    clashes = [] if args.action_on_existing_key == "overwrite" else [
        key for key in values if store.get_variable(key) is not None]
    if clashes and args.action_on_existing_key == "fail":
        raise CliError(f"{args.file}: {len(clashes)} variable(s) already exist ({', '.join(clashes)}); nothing "
                       f"was imported; pass --action-on-existing-key overwrite or skip")
    skip = set(clashes) if args.action_on_existing_key == "skip" else set()
    for key, value in values.items():
        if key not in skip:
            chain.set_variable(key, value)
    print(f"imported {len(values) - len(skip)} variable(s) from {args.file} into {describe(store)}"
          + (f"; skipped {len(skip)} that already exist ({', '.join(sorted(skip))})" if skip else ""),
          file=sys.stderr)
    return 0


def export_variables(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.secrets.files import variables_to_text

    fmt = export_format(args)
    store = listing_backend(open_chain(conf), "variable")
    values: dict[str, Any] = {record.key: record.value for record in store.list_variables()}
    if fmt == "env":  # one KEY=VALUE a line: JSON values are compacted, other line breaks cannot be carried
        values = {key: _compact_json(value) for key, value in values.items()}
        broken = [key for key, value in values.items() if value and "\n" in value]
        if broken:
            raise CliError(f"the env format holds one line per variable, but {', '.join(map(repr, broken))} "
                           f"span(s) several lines; export to a .json or .yaml file instead")
    to_file = args.file != "-"
    show = to_file or args.show_secrets
    for key, value in values.items():
        shown_value(key, value, show_secrets=show)  # registers nested secrets for write_out's masker
    write_export(args.file, variables_to_text(values, fmt, show_secrets=show), show_secrets=show)
    if to_file:
        print(f"exported {len(values)} variable(s) to {args.file}; warning: sensitive values are in plain text, "
              f"keep it private", file=sys.stderr)
    return 0
