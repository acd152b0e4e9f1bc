"""parcel returns: a shipped parcel received back at its node (returned_at, returned_by_id, returned_location_id)

The new parcel status `returned` needs no change here: statuses are stored
as plain strings (VARCHAR(32), no CHECK).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 15:10:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('parcels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('returned_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('returned_location_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_parcels_returned_by_id_users', 'users', ['returned_by_id'], ['id'])
        batch_op.create_foreign_key('fk_parcels_returned_location_id_locations', 'locations',
                                    ['returned_location_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('parcels', schema=None) as batch_op:
        batch_op.drop_constraint('fk_parcels_returned_location_id_locations', type_='foreignkey')
        batch_op.drop_constraint('fk_parcels_returned_by_id_users', type_='foreignkey')
        batch_op.drop_column('returned_location_id')
        batch_op.drop_column('returned_by_id')
        batch_op.drop_column('returned_at')
