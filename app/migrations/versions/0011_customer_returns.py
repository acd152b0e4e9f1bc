"""customer returns: authorised returns (RMA) and their lines, returned units held out of stock, and the bin each returned parcel item went into

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 15:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'customer_returns',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ref', sa.String(length=40), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('return_id', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=True),
        sa.Column('payload_sha256', sa.String(length=64), nullable=False),
        sa.Column('status', sa.Enum('authorised', 'received', name='returnstatus', native_enum=False,
                                    length=32), nullable=False),
        sa.Column('authorised_by', sa.String(length=100), nullable=False),
        sa.Column('authorised_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('received_by_id', sa.Integer(), nullable=True),
        sa.Column('node_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['received_by_id'], ['users.id']),
        sa.ForeignKeyConstraint(['node_id'], ['nodes.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ref'),
        sa.UniqueConstraint('order_id', 'return_id'),
    )
    op.create_index('ix_customer_returns_order_id', 'customer_returns', ['order_id'])
    op.create_index('ix_customer_returns_status', 'customer_returns', ['status'])
    op.create_table(
        'return_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_return_id', sa.Integer(), nullable=False),
        sa.Column('sku_id', sa.Integer(), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('received', sa.Integer(), nullable=False),
        sa.Column('sellable', sa.Integer(), nullable=False),
        sa.Column('damaged', sa.Integer(), nullable=False),
        sa.Column('quarantined', sa.Integer(), nullable=False),
        sa.CheckConstraint('quantity > 0', name='return_quantity_positive'),
        sa.CheckConstraint('received = sellable + damaged + quarantined AND received <= quantity',
                           name='return_received_within_quantity'),
        sa.CheckConstraint('sellable >= 0 AND damaged >= 0 AND quarantined >= 0', name='return_counts_not_negative'),
        sa.ForeignKeyConstraint(['customer_return_id'], ['customer_returns.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['sku_id'], ['skus.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('customer_return_id', 'sku_id'),
    )
    op.create_index('ix_return_lines_customer_return_id', 'return_lines', ['customer_return_id'])
    op.create_table(
        'quarantine_stock',
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('sku_id', sa.Integer(), nullable=False),
        sa.Column('quarantined', sa.Integer(), nullable=False),
        sa.Column('damaged', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('quarantined >= 0 AND damaged >= 0', name='quarantine_not_negative'),
        sa.ForeignKeyConstraint(['node_id'], ['nodes.id']),
        sa.ForeignKeyConstraint(['sku_id'], ['skus.id']),
        sa.PrimaryKeyConstraint('node_id', 'sku_id'),
    )


    with op.batch_alter_table('parcel_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('returned_location_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_parcel_items_returned_location_id_locations', 'locations',
                                    ['returned_location_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('parcel_items', schema=None) as batch_op:
        batch_op.drop_constraint('fk_parcel_items_returned_location_id_locations', type_='foreignkey')
        batch_op.drop_column('returned_location_id')
    op.drop_table('quarantine_stock')
    op.drop_index('ix_return_lines_customer_return_id', table_name='return_lines')
    op.drop_table('return_lines')
    op.drop_index('ix_customer_returns_status', table_name='customer_returns')
    op.drop_index('ix_customer_returns_order_id', table_name='customer_returns')
    op.drop_table('customer_returns')
