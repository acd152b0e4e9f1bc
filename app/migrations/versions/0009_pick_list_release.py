"""pick list release: who a lead released a list from, who released it, when
(released_from_id, released_by_id, released_at), so that picker is told

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pick_lists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_from_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('released_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('released_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_pick_lists_released_from_id_users', 'users', ['released_from_id'], ['id'])
        batch_op.create_foreign_key('fk_pick_lists_released_by_id_users', 'users', ['released_by_id'], ['id'])
        batch_op.create_index('ix_pick_lists_released_from', ['released_from_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pick_lists', schema=None) as batch_op:
        batch_op.drop_index('ix_pick_lists_released_from')
        batch_op.drop_constraint('fk_pick_lists_released_by_id_users', type_='foreignkey')
        batch_op.drop_constraint('fk_pick_lists_released_from_id_users', type_='foreignkey')
        batch_op.drop_column('released_at')
        batch_op.drop_column('released_by_id')
        batch_op.drop_column('released_from_id')
