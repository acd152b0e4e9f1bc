"""delivery, webhooks and holds: courier tracking updates, same-city proof of
delivery, fulfilment holds, channel webhooks and their delivery log; API
tokens may belong to a carrier instead of a channel

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:06:47.234464
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('delivered_seq', sa.BigInteger(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel_id')
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_at', ['at'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_webhook', ['webhook_id', 'id'], unique=False)

    op.create_table('fulfilment_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fulfilment_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('placed_by', sa.String(length=64), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['fulfilment_id'], ['fulfilments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('fulfilment_holds', schema=None) as batch_op:
        batch_op.create_index('ix_fulfilment_holds_fulfilment', ['fulfilment_id', 'released_at'], unique=False)

    op.create_table('parcel_deliveries',
    sa.Column('parcel_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('in_transit', 'out_for_delivery', 'failed_attempt', 'delivered', 'returned', name='trackingstatus', native_enum=False, length=32), nullable=False),
    sa.Column('status_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rider_id', sa.Integer(), nullable=True),
    sa.Column('picked_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('code_failures', sa.Integer(), nullable=False),
    sa.Column('proof', sa.Enum('carrier', 'code', 'photo', 'lead', name='proofkind', native_enum=False, length=32), nullable=True),
    sa.Column('photo_path', sa.String(length=255), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('code_failures >= 0', name='code_failures_not_negative'),
    sa.ForeignKeyConstraint(['delivered_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['parcel_id'], ['parcels.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rider_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('parcel_id')
    )
    with op.batch_alter_table('parcel_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_parcel_deliveries_rider_status', ['rider_id', 'status'], unique=False)

    op.create_table('tracking_updates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('parcel_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('in_transit', 'out_for_delivery', 'failed_attempt', 'delivered', 'returned', name='trackingstatus', native_enum=False, length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parcel_id'], ['parcels.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('parcel_id', 'status', 'at', name='uq_tracking_update')
    )
    with op.batch_alter_table('tracking_updates', schema=None) as batch_op:
        batch_op.create_index('ix_tracking_updates_parcel_at', ['parcel_id', 'at'], unique=False)

    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('carrier', sa.String(length=32), nullable=True))
        batch_op.alter_column('channel_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_check_constraint('token_channel_or_carrier', '(channel_id IS NULL) <> (carrier IS NULL)')


def downgrade() -> None:
    op.execute("DELETE FROM api_tokens WHERE channel_id IS NULL")
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('token_channel_or_carrier', type_='check')
        batch_op.alter_column('channel_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('carrier')

    with op.batch_alter_table('tracking_updates', schema=None) as batch_op:
        batch_op.drop_index('ix_tracking_updates_parcel_at')

    op.drop_table('tracking_updates')
    with op.batch_alter_table('parcel_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_parcel_deliveries_rider_status')

    op.drop_table('parcel_deliveries')
    with op.batch_alter_table('fulfilment_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_fulfilment_holds_fulfilment')

    op.drop_table('fulfilment_holds')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_webhook')
        batch_op.drop_index('ix_webhook_deliveries_at')

    op.drop_table('webhook_deliveries')
    op.drop_table('webhooks')
