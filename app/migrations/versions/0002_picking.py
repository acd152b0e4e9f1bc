"""picking: pick lists, their fulfilments and totes, pick lines per bin, scan records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:51:58.268609
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pick_lists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('open', 'picking', 'done', name='pickliststate', native_enum=False, length=32), nullable=False),
    sa.Column('picker_id', sa.Integer(), nullable=True),
    sa.Column('promised_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ),
    sa.ForeignKeyConstraint(['picker_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('pick_lists', schema=None) as batch_op:
        batch_op.create_index('ix_pick_lists_node_state', ['node_id', 'state'], unique=False)
        batch_op.create_index('ix_pick_lists_picker', ['picker_id'], unique=False)

    op.create_table('pick_list_fulfilments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pick_list_id', sa.Integer(), nullable=False),
    sa.Column('fulfilment_id', sa.Integer(), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('tote', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['fulfilment_id'], ['fulfilments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pick_list_id'], ['pick_lists.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fulfilment_id'),
    sa.UniqueConstraint('pick_list_id', 'slot')
    )
    with op.batch_alter_table('pick_list_fulfilments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pick_list_fulfilments_tote'), ['tote'], unique=False)

    op.create_table('pick_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pick_list_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('fulfilment_line_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('picked', sa.Integer(), nullable=False),
    sa.Column('short', sa.Integer(), nullable=False),
    sa.Column('step', sa.Enum('location', 'product', 'quantity', 'tote', 'done', name='pickstep', native_enum=False, length=32), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('picked >= 0 AND picked <= quantity', name='picked_within_quantity'),
    sa.CheckConstraint('short >= 0', name='short_not_negative'),
    sa.ForeignKeyConstraint(['fulfilment_line_id'], ['fulfilment_lines.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], ),
    sa.ForeignKeyConstraint(['pick_list_id'], ['pick_lists.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pick_list_id', 'seq')
    )
    with op.batch_alter_table('pick_lines', schema=None) as batch_op:
        batch_op.create_index('ix_pick_lines_bin', ['location_id', 'sku_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pick_lines_fulfilment_line_id'), ['fulfilment_line_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pick_lines_pick_list_id'), ['pick_list_id'], unique=False)

    op.create_table('scan_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scan_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('work', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=200), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('pick_list_id', sa.Integer(), nullable=True),
    sa.Column('pick_line_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pick_line_id'], ['pick_lines.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pick_list_id'], ['pick_lists.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scan_id')
    )
    with op.batch_alter_table('scan_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_records_pick_list_id'), ['pick_list_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scan_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scan_records_pick_list_id'))

    op.drop_table('scan_records')
    with op.batch_alter_table('pick_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pick_lines_pick_list_id'))
        batch_op.drop_index(batch_op.f('ix_pick_lines_fulfilment_line_id'))
        batch_op.drop_index('ix_pick_lines_bin')

    op.drop_table('pick_lines')
    with op.batch_alter_table('pick_list_fulfilments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pick_list_fulfilments_tote'))

    op.drop_table('pick_list_fulfilments')
    with op.batch_alter_table('pick_lists', schema=None) as batch_op:
        batch_op.drop_index('ix_pick_lists_picker')
        batch_op.drop_index('ix_pick_lists_node_state')

    op.drop_table('pick_lists')
