"""Delivery and receipt (确认收货): the last steps, and the fulfilment time."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.fulfilment import events, orders
from app.fulfilment.errors import Refusal
from app.models import Fulfilment, FulfilmentStatus, Order, OrderStatus, utcnow

RECEIVABLE = {FulfilmentStatus.shipped, FulfilmentStatus.delivered}


def confirm_receipt(session: Session, order: Order) -> bool:
    """Every live fulfilment becomes completed. Returns False on a repeat."""
    orders.lock(session, order)
    live = orders.live_fulfilments(order)
    if not live:
        raise Refusal("order_cancelled")
    if all(f.status == FulfilmentStatus.completed for f in live):
        return False
    pending = [f for f in live if f.status not in RECEIVABLE | {FulfilmentStatus.completed}]
    if pending:
        raise Refusal("receipt_not_allowed", pending=", ".join(f.ref for f in pending),
                      details={"pending": [{"fulfilment": f.ref, "status": f.status.value} for f in pending]})
    now = utcnow()
    for f in live:
        if f.status == FulfilmentStatus.completed:
            continue
        f.status, f.completed_at, f.updated_at = FulfilmentStatus.completed, now, now
        events.record(session, "fulfilment.completed", fulfilment=f,
                      data={"fulfilment_seconds": int((now - order.placed_at).total_seconds())})
    orders.refresh(order)
    events.record(session, "order.completed", order=order)
    return True


def complete_due(session: Session, after: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Automatic receipt: fulfilments delivered at least `after` ago complete,
    as if the customer had confirmed (the scheduler's job; the setting is
    LUYUE_AUTO_COMPLETE_DAYS). Returns how many completed."""
    now = now or utcnow()
    # Candidates without a lock; each is locked with its order (the lock
    # order) and checked again: a receipt or a second scheduler may be first.
    due = session.scalars(
        select(Fulfilment).where(Fulfilment.status == FulfilmentStatus.delivered,
                                 Fulfilment.delivered_at <= now - after)
        .order_by(Fulfilment.delivered_at, Fulfilment.id)).all()
    done = 0
    for f in due:
        order = f.order
        orders.lock(session, order)
        if f.status != FulfilmentStatus.delivered:
            continue
        f.status, f.completed_at, f.updated_at = FulfilmentStatus.completed, now, now
        events.record(session, "fulfilment.completed", fulfilment=f,
                      data={"fulfilment_seconds": int((now - order.placed_at).total_seconds()),
                            "auto": True, "days_after_delivery": after.total_seconds() / 86400})
        before = order.status
        orders.refresh(order)
        if order.status == OrderStatus.completed and before != OrderStatus.completed:
            events.record(session, "order.completed", order=order, data={"auto": True})
        done += 1
    return done
