"""SqlHook (Airflow's DbApiHook): a SQLAlchemy engine from a connection, and queries through it.

Statements go to the driver's own cursor, as in Airflow, so parameters use the driver's style:
`?` or `:name` for sqlite, `%s` or `%(name)s` for postgres (psycopg 3).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import InvalidConnectionError
from nbflow.hooks.base import BaseHook, hooks
from nbflow.secrets.connection import Connection, connection_testers
from nbflow.utils.registry import Registry

if TYPE_CHECKING:
    from sqlalchemy import URL, Engine

#: conn_type → the SQLAlchemy URL of such a connection.
sqlalchemy_urls: Registry[Callable[[Connection], "URL"]] = Registry("SQL connection type",
                                                                   entry_points="nbflow.sqlalchemy_urls")

# libpq settings a postgres connection's extra may carry; other extra keys are nbflow's or Airflow's own.
_LIBPQ_EXTRAS = frozenset({
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword", "connect_timeout",
    "application_name", "options", "target_session_attrs", "keepalives", "keepalives_idle",
    "keepalives_interval", "keepalives_count", "client_encoding", "gssencmode",
})


@sqlalchemy_urls.register("sqlite")
def sqlite_url(conn: Connection) -> "URL":
    """`sqlite://%2Fpath%2Fto%2Fdb` (path as host, Airflow's form) or `sqlite:////path/to/db` (path as schema)."""
    from sqlalchemy import URL

    path = conn.host or conn.schema or ":memory:"
    return URL.create("sqlite", database=path)


def postgres_url(conn: Connection) -> "URL":
    """`postgres://login:password@host:port/database?sslmode=...` with psycopg 3 as the driver."""
    from sqlalchemy import URL

    query = {k: str(v) for k, v in conn.extra_dejson.items() if k in _LIBPQ_EXTRAS and v is not None}
    return URL.create("postgresql+psycopg", username=conn.login, password=conn.password, host=conn.host,
                      port=conn.port, database=conn.schema or None, query=query)


sqlalchemy_urls.add("postgres", postgres_url)
sqlalchemy_urls.add("postgresql", postgres_url)


@hooks.register("sqlite")
@hooks.register("postgres")
@hooks.register("postgresql")
class SqlHook(BaseHook):
    """Runs SQL on the database a connection names; the engine is made on first use and kept."""

    conn_name_attr = "conn_id"
    default_conn_name = "sql_default"
    hook_name = "SQL"

    def __init__(self, conn_id: str | None = None, *, connection: Connection | None = None,
                 engine_kwargs: Mapping[str, Any] | None = None, log_sql: bool = True) -> None:
        super().__init__()
        if conn_id is None and connection is None:
            conn_id = self.default_conn_name
        self.conn_id = conn_id or (connection.conn_id if connection else None)
        self._connection = connection
        self.engine_kwargs = dict(engine_kwargs or {})
        self.log_sql = log_sql
        self._engine: Engine | None = None

    @property
    def connection(self) -> Connection:
        """The connection, fetched from the secrets chain once."""
        if self._connection is None:
            self._connection = self.get_connection(str(self.conn_id))
        return self._connection

    @property
    def sqlalchemy_url(self) -> "URL":
        conn = self.connection
        try:
            build = sqlalchemy_urls.get(conn.conn_type or "", where=f"conn_type of connection {conn.conn_id!r}")
        except KeyError as err:
            raise InvalidConnectionError(f"connection {conn.conn_id!r}: SqlHook cannot open conn_type "
                                         f"{conn.conn_type!r}; known: {', '.join(sqlalchemy_urls)}") from err
        return build(conn)

    def get_uri(self) -> str:
        """The SQLAlchemy URL as text, password included (Airflow's DbApiHook.get_uri)."""
        return self.sqlalchemy_url.render_as_string(hide_password=False)

    def get_sqlalchemy_engine(self, engine_kwargs: Mapping[str, Any] | None = None) -> "Engine":
        """The engine for this connection (made once; `engine_kwargs` apply when it is made)."""
        if self._engine is None:
            from sqlalchemy import create_engine

            self._engine = create_engine(self.sqlalchemy_url, **{**self.engine_kwargs, **(engine_kwargs or {})})
        return self._engine

    def get_conn(self) -> Any:
        """A DBAPI connection from the engine's pool; close it to return it."""
        return self.get_sqlalchemy_engine().raw_connection()

    def close(self) -> None:
        """Close the engine's pooled connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> "SqlHook":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running SQL -----------------------------------------------------------------------------
    def run(self, sql: str | Iterable[str], autocommit: bool = False, parameters: Any = None,
            handler: Callable[[Any], Any] | None = None, split_statements: bool = False,
            return_last: bool = True) -> Any:
        """Execute one statement or several in one transaction; `handler(cursor)` gives each one's result.

        Returns None without a handler; with one, the last statement's result when `return_last`
        and `sql` was a single string, else a list with one result per statement.
        """
        single = isinstance(sql, str)
        statements = (split_sql(sql) if split_statements else [sql]) if isinstance(sql, str) else list(sql)
        if not statements:
            raise ValueError("no SQL statement to run")
        results: list[Any] = []
        conn = self.get_conn()
        try:
            cursor = conn.cursor()
            try:
                for statement in statements:
                    if self.log_sql:
                        self.log.info("running statement: %s, parameters: %s", statement, parameters)
                    if parameters is None:
                        cursor.execute(statement)
                    else:
                        cursor.execute(statement, parameters)
                    if handler is not None:
                        results.append(handler(cursor))
            finally:
                cursor.close()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
        if handler is None:
            return None
        return results[-1] if single and return_last else results

    def get_records(self, sql: str | Iterable[str], parameters: Any = None) -> list[tuple[Any, ...]]:
        """Every row of the (last) statement's result."""
        return self.run(sql, parameters=parameters, handler=fetch_all_handler)

    def get_first(self, sql: str | Iterable[str], parameters: Any = None) -> tuple[Any, ...] | None:
        """The first row of the (last) statement's result, or None."""
        return self.run(sql, parameters=parameters, handler=fetch_one_handler)

    def test_connection(self) -> tuple[bool, str]:
        """(True, message) when `SELECT 1` runs, else (False, the error)."""
        try:
            self.get_first("SELECT 1")
        except Exception as err:  # noqa: BLE001 - reported, not raised
            return False, f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        finally:
            self.close()
        return True, "connection successfully tested"


# Airflow's name for the generic SQL hook.
DbApiHook = SqlHook


def fetch_all_handler(cursor: Any) -> list[tuple[Any, ...]] | None:
    """All rows of a statement that returns rows, else None."""
    return list(cursor.fetchall()) if cursor.description is not None else None


def fetch_one_handler(cursor: Any) -> tuple[Any, ...] | None:
    """The first row of a statement that returns rows, else None."""
    return cursor.fetchone() if cursor.description is not None else None


def split_sql(sql: str) -> list[str]:
    """Statements of a script split on `;`, ignoring semicolons inside quotes and `--` comments."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(sql):
        char = sql[i]
        if quote:
            current.append(char)
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
            current.append(char)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            current.append(sql[i:end])
            i = end
            continue
        elif char == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    lines = [line.split("--", 1)[0].strip() for line in statement.splitlines()]
    return any(lines)


def test_sql_connection(conn: Connection) -> tuple[bool, str]:
    """Connection.test_connection for sqlite and postgres connections."""
    return SqlHook(connection=conn).test_connection()


for _conn_type in ("sqlite", "postgres", "postgresql"):
    connection_testers.add(_conn_type, test_sql_connection)


def rows_as_lists(rows: Sequence[Sequence[Any]] | None) -> list[list[Any]]:
    """Rows as lists, the shape SQLExecuteQueryOperator pushes as XCom."""
    return [list(row) for row in rows or []]
