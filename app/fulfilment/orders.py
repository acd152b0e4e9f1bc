"""An order's status follows from its fulfilments'."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Fulfilment, FulfilmentStatus as F, Order, OrderStatus, utcnow

SHIPPED_OR_LATER = {F.shipped, F.delivered, F.completed}
NOT_YET_SHIPPED = {F.awaiting_stock, F.awaiting_release, F.reserved, F.picking, F.picked, F.packed}


def lock(session: Session, order: Order) -> None:
    """Hold the order and its fulfilments until commit, read afresh: a second
    cancel or receipt of the same order waits here, then sees what the first
    did. (On SQLite the write transaction already runs alone.)"""
    session.scalars(select(Order).where(Order.id == order.id).with_for_update()
                    .execution_options(populate_existing=True)).all()
    session.scalars(select(Fulfilment).where(Fulfilment.order_id == order.id).order_by(Fulfilment.id)
                    .with_for_update().execution_options(populate_existing=True)).all()
    session.expire(order, ["fulfilments"])


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
