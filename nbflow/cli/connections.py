"""`nbflow connections add|get|list|delete|import|export`: connections in the secrets backends (Airflow's shapes).

Lookups (`get`) ask the whole chain of `secrets.backends`, so a connection from NBFLOW_CONN_<ID> or
Vault shows too; writes, `list` and `export` work on the backend that stores values (the metadata
database). Secrets are printed as *** unless `--show-secrets`, and everything printed passes the masker.

The helpers at the bottom are shared with `nbflow variables` (cli/variables.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.cli.arguments import add_output
from nbflow.cli.errors import CliError
from nbflow.cli.output import format_table
from nbflow.configuration import Config

if TYPE_CHECKING:
    from nbflow.secrets.chain import SecretsChain
    from nbflow.secrets.connection import Connection

FILE_FORMATS = ("json", "yaml", "env")
LIST_COLUMNS = ["conn_id", "conn_type", "host", "port", "schema", "login", "password", "description"]
GET_FIELDS = ["conn_id", "conn_type", "description", "host", "schema", "login", "password", "port", "extra", "uri"]
EXPORT_HELP = ("to FILE, real passwords and extras, a backup that `import` restores (the file gets mode 600 and a "
               "warning is printed); to - (stdout), secrets shown as *** unless --show-secrets")


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    noun = commands.add_parser("connections", parents=[common], help="add, show, list, delete, import and export "
                               "connections")
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True)

    parser = verbs.add_parser("add", parents=[common], help="store a connection in the metadata database",
                              description="Store a connection: give --conn-uri, --conn-json, or --conn-type with "
                              "the separate --conn-* fields. Password and extra are encrypted at rest.")
    parser.add_argument("conn_id", metavar="CONN_ID")
    parser.add_argument("--conn-uri", metavar="URI", help="e.g. postgresql://login:password@host:5432/schema")
    parser.add_argument("--conn-json", metavar="JSON", help="""e.g. '{"conn_type": "http", "host": "example.com"}'""")
    for field, text in (("type", "the connection type, e.g. postgres, http, sqlite"), ("host", "host name"),
                        ("login", "user name"), ("password", "password"), ("schema", "schema or database"),
                        ("port", "port number"), ("extra", "extra settings, one JSON object")):
        parser.add_argument(f"--conn-{field}", metavar=field.upper(), help=text)
    parser.add_argument("--conn-description", metavar="TEXT", help="what the connection is for")
    parser.set_defaults(run=add_connection)

    parser = verbs.add_parser("get", parents=[common], help="one connection, from the first backend holding it")
    parser.add_argument("conn_id", metavar="CONN_ID")
    add_output(parser)
    add_show_secrets(parser)
    parser.set_defaults(run=get_connection)

    parser = verbs.add_parser("list", parents=[common], help="the connections stored in the metadata database")
    add_output(parser)
    add_show_secrets(parser)
    parser.set_defaults(run=list_connections)

    parser = verbs.add_parser("delete", parents=[common], help="remove a connection from the metadata database")
    parser.add_argument("conn_id", metavar="CONN_ID")
    parser.set_defaults(run=delete_connection)

    parser = verbs.add_parser("import", parents=[common], help="store the connections of a .json, .yaml or .env "
                              "file (Airflow's formats)")
    parser.add_argument("file", metavar="FILE")
    add_format(parser, "the file's format (default: from its suffix)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace connections that already exist (default: skip them)")
    parser.set_defaults(run=import_connections)

    parser = verbs.add_parser("export", parents=[common], help="write the stored connections to FILE or - (stdout)",
                              description=f"Write every connection stored in the metadata database; {EXPORT_HELP}.")
    parser.add_argument("file", metavar="FILE|-")
    add_format(parser, "json, yaml or env (default: from FILE's suffix; json for -)")
    add_show_secrets(parser, "print real secrets when writing to - (a FILE always gets them)")
    parser.set_defaults(run=export_connections)


# -- add ------------------------------------------------------------------------------------------

_FIELD_FLAGS = ("conn_type", "conn_host", "conn_login", "conn_password", "conn_schema", "conn_port", "conn_extra")


def connection_from_args(args: argparse.Namespace) -> "Connection":
    """The connection `add`'s flags describe; a bad URI, JSON or port is a one-line error naming the flag."""
    from nbflow.exceptions import InvalidConnectionError
    from nbflow.secrets.connection import Connection

    fields = [f"--{name.replace('_', '-')}" for name in _FIELD_FLAGS if getattr(args, name) is not None]
    if args.conn_uri is not None and args.conn_json is not None:
        raise CliError("give either --conn-uri or --conn-json, not both")
    given = "--conn-uri" if args.conn_uri is not None else "--conn-json" if args.conn_json is not None else None
    if given and fields:
        raise CliError(f"{given} describes the whole connection; leave out {', '.join(fields)} (or give the "
                       f"separate --conn-* fields without {given})")
    if not given and args.conn_type is None:
        raise CliError(f"connection {args.conn_id!r} needs --conn-uri, --conn-json, or --conn-type with the "
                       f"other --conn-* fields, e.g. --conn-uri postgresql://login:password@host:5432/db")
    try:
        if args.conn_uri is not None:
            return Connection(conn_id=args.conn_id, description=args.conn_description, uri=args.conn_uri)
        if args.conn_json is not None:
            data = parse_json(args.conn_json, "--conn-json",
                              """pass one JSON object, e.g. '{"conn_type": "http", "host": "example.com"}'""")
            if not isinstance(data, dict):
                raise CliError(f"--conn-json must be a JSON object, got {json_kind(data)}")
            if args.conn_description is not None:
                data["description"] = args.conn_description
            return Connection.from_dict(data, conn_id=args.conn_id)
        extra = None
        if args.conn_extra is not None:
            extra = parse_json(args.conn_extra, "--conn-extra",
                               """pass one JSON object, e.g. '{"sslmode": "require"}'""")
            if not isinstance(extra, dict):
                raise CliError(f"--conn-extra must be a JSON object, got {json_kind(extra)}")
        return Connection(conn_id=args.conn_id, conn_type=args.conn_type, description=args.conn_description,
                          host=args.conn_host, login=args.conn_login, password=args.conn_password,
                          schema=args.conn_schema, port=args.conn_port, extra=extra)
    except InvalidConnectionError as err:
        raise CliError(f"{given or '--conn-*'}: {err}") from None


def add_connection(args: argparse.Namespace, conf: Config) -> int:
    conn = connection_from_args(args)
    chain = open_chain(conf)
    store = storing_backend(chain, "connection")
    if store.get_connection(args.conn_id) is not None:
        raise CliError(f"connection {args.conn_id!r} already exists; delete it first "
                       f"(`nbflow connections delete {args.conn_id}`)")
    chain.set_connection(conn)
    print(f"added connection {args.conn_id!r} ({conn.conn_type or 'no type'}) to {describe(store)}", file=sys.stderr)
    return 0


# -- get, list ------------------------------------------------------------------------------------

def shown_fields(conn: "Connection", *, show_secrets: bool) -> dict[str, Any]:
    """conn_id, the fields and the URI; password and sensitive extras are *** unless `show_secrets`."""
    from nbflow.secrets.connection import Connection
    from nbflow.secrets.files import connection_fields
    from nbflow.utils.masking import MASK, masker

    fields = connection_fields(conn, show_secrets=show_secrets)
    if not show_secrets:  # so write_out's masker also hides them wherever else they appear
        masker.add(conn.password)
        for name, value in conn.extra_dejson.items():
            masker.add_if_sensitive(str(name), value)
    if show_secrets:
        uri = conn.get_uri()
    else:  # the URI of the masked fields, with its *** left readable
        uri = Connection.from_dict(fields, conn_id=conn.conn_id).get_uri().replace("%2A%2A%2A", MASK)
    return {"conn_id": conn.conn_id, **fields, "uri": uri}


def get_connection(args: argparse.Namespace, conf: Config) -> int:
    chain = open_chain(conf)
    conn = chain.get_connection(args.conn_id)  # ConnectionNotFound names the backends searched
    row = shown_fields(conn, show_secrets=args.show_secrets)
    if args.output == "json":
        text = json.dumps(row, default=str) + "\n"
    else:  # one field a line: a connection is too wide for a one-row table
        text = format_table([{"field": name, "value": _one_line(row[name])} for name in GET_FIELDS],
                            ["field", "value"])
    write_out(text, show_secrets=args.show_secrets)
    return 0


def list_connections(args: argparse.Namespace, conf: Config) -> int:
    store = listing_backend(open_chain(conf), "connection")
    rows = [shown_fields(conn, show_secrets=args.show_secrets) for conn in store.list_connections()]
    if args.output == "json":
        write_out(json.dumps(rows, default=str) + "\n", show_secrets=args.show_secrets)
    elif rows:
        write_out(format_table(rows, LIST_COLUMNS), show_secrets=args.show_secrets)
    else:
        print(f"no connections stored in {describe(store)}", file=sys.stderr)
    return 0


def _one_line(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value) if value else None
    return value


# -- delete ---------------------------------------------------------------------------------------

def delete_connection(args: argparse.Namespace, conf: Config) -> int:
    chain = open_chain(conf)
    store = storing_backend(chain, "connection")
    if not chain.delete_connection(args.conn_id):
        elsewhere = chain.find_connection(args.conn_id) is not None
        raise CliError(f"connection {args.conn_id!r} is not stored in {describe(store)}"
                       + ("; it comes from another secrets backend (e.g. NBFLOW_CONN_"
                          f"{args.conn_id.upper()}), which nbflow does not change" if elsewhere else ""))
    print(f"deleted connection {args.conn_id!r} from {describe(store)}", file=sys.stderr)
    return 0


# -- import, export -------------------------------------------------------------------------------

def import_connections(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.exceptions import InvalidSecretError
    from nbflow.secrets.files import connections_from_text, format_of

    text = read_text(args.file)
    fmt = format_of(args.file, args.format)
    try:
        conns = connections_from_text(text, fmt, source=args.file)
    except InvalidSecretError as err:  # the file's name first, whichever layer found the problem
        message = str(err)
        raise CliError(message if message.startswith(args.file) else f"{args.file}: {message}") from None
    chain = open_chain(conf)
    store = storing_backend(chain, "connection")
    added, skipped = 0, []
    for conn in conns:
        if not args.overwrite and store.get_connection(str(conn.conn_id)) is not None:
            skipped.append(str(conn.conn_id))
            continue
        chain.set_connection(conn)
        added += 1
    print(f"imported {added} connection(s) from {args.file} into {describe(store)}"
          + (f"; skipped {len(skipped)} that already exist ({', '.join(skipped)}); --overwrite replaces them"
             if skipped else ""), file=sys.stderr)
    return 0


def export_connections(args: argparse.Namespace, conf: Config) -> int:
    from nbflow.secrets.files import connections_to_text

    fmt = export_format(args)
    store = listing_backend(open_chain(conf), "connection")
    conns = store.list_connections()
    to_file = args.file != "-"
    show = to_file or args.show_secrets
    write_export(args.file, connections_to_text(conns, fmt, show_secrets=show), show_secrets=show)
    if to_file:
        print(f"exported {len(conns)} connection(s) to {args.file}; warning: it holds their passwords and extras "
              f"in plain text, keep it private", file=sys.stderr)
    return 0


# -- shared with cli/variables.py ---------------------------------------------------------------------

def add_show_secrets(parser: argparse.ArgumentParser, text: str = "print passwords and sensitive values "
                     "instead of ***") -> None:
    parser.add_argument("--show-secrets", action="store_true", help=text)


def add_format(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--format", choices=FILE_FORMATS, default=None, help=text)


def open_chain(conf: Config) -> "SecretsChain":
    """The secrets backends chain of this configuration (secrets.backends); its warnings go to stderr."""
    import logging

    from nbflow.secrets.chain import SecretsChain, log

    if not any(getattr(handler, "nbflow_cli", False) for handler in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        from nbflow.utils.masking import MaskedFormatter
        handler.setFormatter(MaskedFormatter("warning: %(message)s"))
        handler.nbflow_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    return SecretsChain.from_config(conf)


def describe(backend: Any) -> str:
    """How messages name a backend: `the metadata database` for the metastore."""
    from nbflow.secrets.chain import describe as backend_name

    name = backend_name(backend)
    return "the metadata database" if name == "metastore" else f"secrets backend {name!r}"


def storing_backend(chain: "SecretsChain", kind: str) -> Any:
    """The first backend that stores `kind`s (where the chain writes): the metastore by default."""
    for backend in chain.backends:
        if callable(getattr(backend, f"set_{kind}", None)):
            return backend
    raise CliError(f"none of the secrets backends ({', '.join(chain.names) or 'none'}) stores {kind}s; "
                   f"add `metastore` to secrets.backends")


def listing_backend(chain: "SecretsChain", kind: str) -> Any:
    """The first backend that can list its `kind`s: the metastore by default."""
    for backend in chain.backends:
        if callable(getattr(backend, f"list_{kind}s", None)):
            return backend
    raise CliError(f"none of the secrets backends ({', '.join(chain.names) or 'none'}) can list its {kind}s; "
                   f"add `metastore` to secrets.backends")


def write_out(text: str, *, show_secrets: bool) -> None:
    """Data to stdout through the masker, or as is when the user asked to see secrets."""
    from nbflow.utils.masking import masker

    sys.stdout.write(text if show_secrets else masker.redact(text))


def read_text(path: str) -> str:
    """The text of an import file; an unreadable or non-UTF-8 file is a one-line error naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise CliError(f"cannot read {path}: not UTF-8 text (byte {err.start})") from None


def export_format(args: argparse.Namespace) -> str:
    """--format, else FILE's suffix; json for stdout."""
    from nbflow.secrets.files import format_of

    if args.file == "-":
        return args.format or "json"
    return format_of(args.file, args.format)


def write_export(target: str, text: str, *, show_secrets: bool) -> None:
    """`text` to stdout (`-`, through write_out) or to a new file only its owner may read (mode 600)."""
    if target == "-":
        write_out(text, show_secrets=show_secrets)
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as err:
        raise CliError(f"cannot write {target}: {err.strerror or err}") from None


def parse_json(text: str, what: str, advice: str) -> Any:
    """`text` parsed; bad JSON is a one-line error naming `what`, where the JSON broke, then `advice`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        problem = err.msg.replace(" delimiter", "")
        problem = problem[:1].lower() + problem[1:]
        raise CliError(f"{what} is not valid JSON (line {err.lineno}, column {err.colno}: {problem}); "
                       f"{advice}") from None


def json_kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)
