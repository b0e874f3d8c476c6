"""Alembic environment for nbflow's metadata database; run through `nbflow.store.migrate`, not the alembic CLI.

`migrate.py` passes an open connection (inside its transaction) as `config.attributes["connection"]`,
so a migration and the default rows it implies commit together or not at all.
"""
from __future__ import annotations

from alembic import context

from nbflow.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    """Write the SQL to stdout instead of running it (`alembic upgrade --sql` style)."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("nbflow migrations run through nbflow.store.migrate (e.g. `nbflow db upgrade`), "
                           "which passes a connection; the alembic command line is not set up for them")
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
