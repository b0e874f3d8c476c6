"""Serialized DAGs and the DAG processor's file table: the scheduler and listings read DAGs from here.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('serialized_dag',
    sa.Column('dag_id', sa.String(length=250), nullable=False),
    sa.Column('fileloc', sa.Text(), nullable=False),
    sa.Column('source_hash', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('dag_id', name=op.f('pk_serialized_dag'))
    )
    op.create_index(op.f('ix_serialized_dag_fileloc'), 'serialized_dag', ['fileloc'])
    op.create_table('dag_file',
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('mtime', sa.BigInteger(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('parsed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('import_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('path', name=op.f('pk_dag_file'))
    )


def downgrade() -> None:
    op.drop_table('dag_file')
    op.drop_index(op.f('ix_serialized_dag_fileloc'), table_name='serialized_dag')
    op.drop_table('serialized_dag')
