"""Delivery and receipt (确认收货): the last steps, and the fulfilment time."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.fulfilment import events, orders
from app.fulfilment.errors import Refusal
from app.models import FulfilmentStatus, Order, utcnow

RECEIVABLE = {FulfilmentStatus.shipped, FulfilmentStatus.delivered}


def confirm_receipt(session: Session, order: Order) -> bool:
    """Every live fulfilment becomes completed. Returns False on a repeat."""
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
