"""Which package provides the driver a database URL names, for the error that says what to install.

SQLAlchemy imports a dialect's DBAPI module only when an engine is created, and then fails with a
bare `No module named 'MySQLdb'`, which names neither the URL's part at fault nor the package to
install (`mysqlclient`). This table says it: an nbflow extra where one exists (pyproject's
`[project.optional-dependencies]`), else the plain pip package.
"""
from __future__ import annotations

from sqlalchemy.engine import URL

# (backend, driver) -> what to install; the driver is the part after '+' in the URL, or the dialect's default.
PACKAGES: dict[tuple[str, str], str] = {
    ("postgresql", "psycopg"): "nbflow[postgres]",
    ("postgresql", "psycopg2"): "psycopg2-binary",
    ("postgresql", "psycopg2cffi"): "psycopg2cffi",
    ("postgresql", "pg8000"): "pg8000",
    ("postgresql", "asyncpg"): "asyncpg",
    ("mysql", "mysqldb"): "mysqlclient",
    ("mysql", "pymysql"): "PyMySQL",
    ("mysql", "mysqlconnector"): "mysql-connector-python",
    ("mysql", "asyncmy"): "asyncmy",
    ("mysql", "aiomysql"): "aiomysql",
    ("mysql", "mariadbconnector"): "mariadb",
    ("mariadb", "mysqldb"): "mysqlclient",
    ("mariadb", "pymysql"): "PyMySQL",
    ("mariadb", "mariadbconnector"): "mariadb",
    ("mssql", "pyodbc"): "pyodbc",
    ("mssql", "pymssql"): "pymssql",
    ("mssql", "aioodbc"): "aioodbc",
    ("oracle", "oracledb"): "oracledb",
    ("oracle", "cx_oracle"): "cx_Oracle",
}

# Modules that name their package when the URL's driver cannot be read (an unknown driver name).
_BY_MODULE = {"MySQLdb": "mysqlclient", "pymysql": "PyMySQL", "pyodbc": "pyodbc", "oracledb": "oracledb",
              "cx_Oracle": "cx_Oracle", "psycopg": "nbflow[postgres]", "psycopg2": "psycopg2-binary",
              "pymssql": "pymssql", "pg8000": "pg8000", "asyncpg": "asyncpg"}


def driver_name(url: URL) -> str:
    """The URL's driver: the part after '+', else its dialect's default ('' when the dialect is unknown)."""
    if "+" in url.drivername:
        return url.drivername.split("+", 1)[1]
    try:
        return url.get_driver_name()
    except Exception:  # noqa: BLE001 - an unknown dialect: the caller says so
        return ""


def package_for(url: URL, module: str | None = None) -> str:
    """The package to install for the URL's driver (`module`: the one whose import failed), pip-ready."""
    package = PACKAGES.get((url.get_backend_name(), driver_name(url))) or _BY_MODULE.get(module or "") \
        or (module or driver_name(url) or url.get_backend_name())
    return f"pip install '{package}'" if "[" in package else f"pip install {package}"


__all__ = ["PACKAGES", "driver_name", "package_for"]
