"""Index task instances by (dag_id, state): counting a DAG's queued and running instances.

Without it SQLite counted through the (dag_id, run_id, state) index on dag_id alone, reading
every instance of every run of the DAG: the cost of each attempt's max_active_tasks check grew
with the DAG's history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_task_instance_dag_id_state', 'task_instance', ['dag_id', 'state'])


def downgrade() -> None:
    op.drop_index('ix_task_instance_dag_id_state', table_name='task_instance')
