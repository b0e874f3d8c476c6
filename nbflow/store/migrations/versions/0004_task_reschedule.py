"""task_reschedule: one row per reschedule of a sensor, so its timeout counts from its first poke.

A sensor in mode="reschedule" ends each poke as up_for_reschedule without using a try; the row's
start_date of the first poke of the current try is when its timeout started (Airflow's table).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'task_reschedule',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('dag_id', sa.String(length=250), nullable=False),
        sa.Column('task_id', sa.String(length=250), nullable=False),
        sa.Column('run_id', sa.String(length=250), nullable=False),
        sa.Column('map_index', sa.Integer(), nullable=False),
        sa.Column('try_number', sa.Integer(), nullable=False),
        sa.Column('start_date', sa.DateTime(timezone=True), nullable=False),
        sa.Column('end_date', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reschedule_date', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['dag_id', 'run_id'], ['dag_run.dag_id', 'dag_run.run_id'],
                                name=op.f('fk_task_reschedule_dag_id_dag_run'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_reschedule')),
    )
    op.create_index('ix_task_reschedule_key', 'task_reschedule',
                    ['dag_id', 'run_id', 'task_id', 'map_index', 'try_number'])


def downgrade() -> None:
    op.drop_index('ix_task_reschedule_key', table_name='task_reschedule')
    op.drop_table('task_reschedule')
