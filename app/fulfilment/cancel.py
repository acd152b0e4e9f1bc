"""Cancel, with interception (拦截): what has not shipped stops here.

A packed fulfilment is cancelled like the rest, and marked intercepted: its
parcels are refused at the outbound scan instead of leaving the building.
A fulfilment with a parcel that already left cannot be stopped: it counts as
shipped.

`stop` is the one rule for cancelling fulfilments of a locked order (the
channel's cancel here, the auto-cancel in `hold`): each gets
`fulfilment.cancelled` (and `fulfilment.intercepted` when it had labelled
parcels), then the order gets `order.cancelled` if its status became
`cancelled`, else `order.partially_cancelled` (what was cancelled, what
shipped). See docs/transitions.md."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.fulfilment import events, orders, reserve, tracking
from app.fulfilment.errors import Refusal
from app.models import Fulfilment, FulfilmentStatus, Order, OrderStatus, ParcelStatus, utcnow


def stoppable(f: Fulfilment) -> bool:
    """Not shipped, and none of its parcels left the dock."""
    return f.status in orders.NOT_YET_SHIPPED and all(p.shipped_at is None for p in f.parcels)


def cancel(session: Session, order: Order, reason: str = "channel_request") -> bool:
    """Returns True if anything changed; repeating a cancel is a no-op.
    Refusals: order_already_shipped (every live fulfilment left)."""
    orders.lock(session, order)
    live = orders.live_fulfilments(order)
    unshipped = [f for f in live if stoppable(f)]
    if not unshipped:
        if order.cancel_requested_at is not None or not live:
            return False
        raise Refusal("order_already_shipped")
    order.cancel_requested_at = utcnow()
    stop(session, order, unshipped, reason)
    return True


def stop(session: Session, order: Order, fulfilments: list[Fulfilment], reason: str,
         data: dict | None = None) -> None:
    """Cancel `fulfilments` of `order`, which the caller locked (orders.lock)
    and checked `stoppable`; release what they hold, intercept their labelled
    parcels, and say what became of the order."""
    now = utcnow()
    for f in fulfilments:
        labelled = [p for p in f.parcels if p.status == ParcelStatus.packed]
        intercept = f.status == FulfilmentStatus.packed or bool(labelled)
        reserve.release(session, f)
        f.status, f.cancelled_at, f.updated_at, f.intercepted = FulfilmentStatus.cancelled, now, now, intercept
        events.record(session, "fulfilment.cancelled", fulfilment=f,
                      data={"reason": reason, "intercept": intercept, **(data or {})})
        if intercept:
            for parcel in labelled:
                parcel.status = ParcelStatus.intercepted
                events.record(session, "parcel.intercepted", fulfilment=f,
                              data={**tracking.parcel_data(parcel), "reason": reason})
            events.record(session, "fulfilment.intercepted", fulfilment=f,
                          data={"reason": reason, "parcels": [p.tracking_number for p in labelled]})
    orders.refresh(order)
    gone = set(fulfilments)
    outcome = {"reason": reason, "cancelled": [f.ref for f in fulfilments],
               "shipped": [f.ref for f in orders.live_fulfilments(order) if f not in gone and not stoppable(f)]}
    if order.status == OrderStatus.cancelled:
        events.record(session, "order.cancelled", order=order, data=outcome)
    else:
        events.record(session, "order.partially_cancelled", order=order, data=outcome)
