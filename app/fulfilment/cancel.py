"""Cancel, with interception (拦截): what has not shipped stops here.

A packed fulfilment is cancelled like the rest, and marked intercepted: its
parcel is refused at the outbound scan instead of leaving the building."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.fulfilment import events, orders, reserve
from app.fulfilment.errors import Refusal
from app.models import FulfilmentStatus, Order, ParcelStatus, utcnow


def cancel(session: Session, order: Order, reason: str = "channel_request") -> bool:
    """Returns True if anything changed; repeating a cancel is a no-op."""
    orders.lock(session, order)
    live = orders.live_fulfilments(order)
    unshipped = [f for f in live if f.status in orders.NOT_YET_SHIPPED]
    if not unshipped:
        if order.cancel_requested_at is not None or not live:
            return False
        raise Refusal("order_already_shipped")
    now = utcnow()
    for f in unshipped:
        packed = f.status == FulfilmentStatus.packed
        reserve.release(session, f)
        f.status, f.cancelled_at, f.updated_at, f.intercepted = FulfilmentStatus.cancelled, now, now, packed
        events.record(session, "fulfilment.cancelled", fulfilment=f, data={"reason": reason, "intercept": packed})
        if packed:
            for parcel in f.parcels:
                parcel.status = ParcelStatus.intercepted
            events.record(session, "fulfilment.intercepted", fulfilment=f,
                          data={"reason": reason, "parcels": [p.tracking_number for p in f.parcels]})
    order.cancel_requested_at = now
    orders.refresh(order)
    events.record(session, "order.cancelled", order=order,
                  data={"reason": reason, "cancelled": [f.ref for f in unshipped],
                        "shipped": [f.ref for f in live if f not in unshipped]})
    return True
