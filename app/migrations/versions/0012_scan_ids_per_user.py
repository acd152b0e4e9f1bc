"""scan ids per user: a scan id is unique per (user, id), so another worker's id is a new scan

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 16:20:00.000000
"""
from __future__ import annotations

from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The old key was made without a name: PostgreSQL named it itself; SQLite's is
# found by this convention when batch mode copies the table.
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_key_name() -> str:
    return 'scan_records_scan_id_key' if op.get_bind().dialect.name == 'postgresql' else 'uq_scan_records_scan_id'


def upgrade() -> None:
    with op.batch_alter_table('scan_records', schema=None, naming_convention=_CONVENTION) as batch_op:
        batch_op.drop_constraint(_old_key_name(), type_='unique')
        batch_op.create_unique_constraint('uq_scan_records_user_scan', ['user_id', 'scan_id'])


def downgrade() -> None:
    # Refused by the database if two workers' scans share an id by then.
    with op.batch_alter_table('scan_records', schema=None, naming_convention=_CONVENTION) as batch_op:
        batch_op.drop_constraint('uq_scan_records_user_scan', type_='unique')
        batch_op.create_unique_constraint(_old_key_name(), ['scan_id'])
