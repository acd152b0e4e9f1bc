"""rate windows: API requests per channel and minute, for LUYUE_RATE_LIMIT_PER_MINUTE

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 11:42:46.945200
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_windows',
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('minute', sa.BigInteger(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('channel_id', 'minute')
    )


def downgrade() -> None:
    op.drop_table('rate_windows')
