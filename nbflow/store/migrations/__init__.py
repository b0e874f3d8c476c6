"""Alembic migrations of the metadata database (run by nbflow.store.migrate)."""
