"""stock counts: cycle counts per bin and SKU (requested, counted, variance, a lead's decision)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 15:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stock_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('requested', 'applied', 'pending_approval', 'recount', 'rejected',
                                name='countstatus', native_enum=False, length=32), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('open_key', sa.String(length=40), nullable=True),
    sa.Column('requested_by', sa.String(length=64), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('book_on_shelf', sa.Integer(), nullable=True),
    sa.Column('counted', sa.Integer(), nullable=True),
    sa.Column('in_totes', sa.Integer(), nullable=True),
    sa.Column('variance', sa.Integer(), nullable=True),
    sa.Column('counted_by', sa.String(length=64), nullable=True),
    sa.Column('counted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recount_of_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('counted IS NULL OR counted >= 0', name='counted_not_negative'),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], ),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ),
    sa.ForeignKeyConstraint(['recount_of_id'], ['stock_counts.id'], ),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('open_key')
    )
    with op.batch_alter_table('stock_counts', schema=None) as batch_op:
        batch_op.create_index('ix_stock_counts_bin', ['location_id', 'sku_id'], unique=False)
        batch_op.create_index('ix_stock_counts_node_status', ['node_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('stock_counts', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_counts_node_status')
        batch_op.drop_index('ix_stock_counts_bin')
    op.drop_table('stock_counts')
