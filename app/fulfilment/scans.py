"""A handheld's scan ids: each worker's own.

Every accepted scan is kept (`ScanRecord`) under the id the handheld made
for it, so a retry over flaky Wi-Fi is recognised and counted once. An id
belongs to the worker who sent it (unique per user and id): the same id
sent under another login is that worker's new scan, never an answer taken
from someone else's.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ScanRecord, User


def seen(session: Session, user: User, scan_id: str | None) -> ScanRecord | None:
    """This worker's earlier scan with this id, if any. Looked up after the
    step's locks, so a retry that waited behind its original finds it."""
    if not scan_id:
        return None
    return session.scalar(select(ScanRecord).where(ScanRecord.user_id == user.id, ScanRecord.scan_id == scan_id))
