"""sessions and delivery codes: a per-user session version, a random value per parcel for delivery codes

Logout, a new PIN, deactivation and a lead's sign-out raise users.session_version, which ends
every login; parcels.delivery_code_seed is what a same-city delivery code is made from.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 16:20:00.000000
"""
from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
    op.add_column('parcels', sa.Column('delivery_code_seed', sa.String(length=32), nullable=True))
    # Each parcel its own random value (a database function's random() is not
    # meant for secrets): codes of parcels already out change once, here. The
    # column stays nullable: making it NOT NULL rebuilds the table on SQLite,
    # and dropping the old one there would cascade into parcel_items.
    parcels = sa.table('parcels', sa.column('id', sa.Integer()), sa.column('delivery_code_seed', sa.String()))
    bind = op.get_bind()
    seeds = [{"pid": row[0], "seed": secrets.token_hex(16)} for row in bind.execute(sa.select(parcels.c.id))]
    if seeds:  # one executemany
        bind.execute(parcels.update().where(parcels.c.id == sa.bindparam("pid"))
                     .values(delivery_code_seed=sa.bindparam("seed")), seeds)


def downgrade() -> None:
    with op.batch_alter_table('parcels') as batch:
        batch.drop_column('delivery_code_seed')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('session_version')
