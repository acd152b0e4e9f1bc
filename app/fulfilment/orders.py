"""An order's status follows from its fulfilments'."""
from __future__ import annotations

from app.models import FulfilmentStatus as F, Order, OrderStatus, utcnow

SHIPPED_OR_LATER = {F.shipped, F.delivered, F.completed}
NOT_YET_SHIPPED = {F.awaiting_stock, F.awaiting_release, F.reserved, F.picking, F.picked, F.packed}


def live_fulfilments(order: Order):
    """Fulfilments that still count: not cancelled, not closed by re-dispatch."""
    return [f for f in order.fulfilments if f.status not in (F.cancelled, F.redispatched)]


def derive_status(order: Order) -> OrderStatus:
    live = live_fulfilments(order)
    if not live:
        return OrderStatus.cancelled if order.fulfilments else OrderStatus.received
    statuses = {f.status for f in live}
    if statuses == {F.completed}:
        return OrderStatus.completed
    if statuses <= {F.delivered, F.completed}:
        return OrderStatus.delivered
    if statuses <= SHIPPED_OR_LATER:
        return OrderStatus.shipped
    if statuses & SHIPPED_OR_LATER:
        return OrderStatus.partially_shipped
    if statuses <= {F.awaiting_stock, F.awaiting_release}:
        return OrderStatus.received
    return OrderStatus.in_fulfilment


def refresh(order: Order) -> None:
    status = derive_status(order)
    order.updated_at = utcnow()
    order.status = status
