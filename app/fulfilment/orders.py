"""An order's status follows from its fulfilments'; and the lock order every
state change takes (docs/transitions.md): the order, its fulfilments by id,
then the parcels of the fulfilment being changed by id. Handovers, delivery
rows, reservations and stock rows come after."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from app.fulfilment import events
from app.models import Fulfilment, FulfilmentStatus as F, Order, OrderStatus, Parcel, utcnow

SHIPPED_OR_LATER = {F.shipped, F.delivered, F.completed}
NOT_YET_SHIPPED = {F.awaiting_stock, F.awaiting_release, F.reserved, F.picking, F.picked, F.packed}


def lock(session: Session, order: Order) -> None:
    """Hold the order and its fulfilments until commit, read afresh: a second
    cancel or receipt of the same order waits here, then sees what the first
    did. (On SQLite the write transaction already runs alone.)

    FOR NO KEY UPDATE (`key_share`): it queues every other guarded change,
    but not the foreign-key checks of rows inserted elsewhere (an event, a
    hold), which would otherwise wait here while holding their own locks."""
    session.scalars(select(Order).where(Order.id == order.id).with_for_update(key_share=True)
                    .execution_options(populate_existing=True)).all()
    session.scalars(select(Fulfilment).where(Fulfilment.order_id == order.id).order_by(Fulfilment.id)
                    .with_for_update(key_share=True).execution_options(populate_existing=True)).all()
    session.expire(order, ["fulfilments"])


def lock_many(session: Session, order_ids) -> None:
    """`lock` for several orders at once, by id: two transactions that each
    touch several orders (a carrier's batch) never wait on each other in a
    circle."""
    ids = sorted(set(order_ids))
    if not ids:
        return
    session.scalars(select(Order).where(Order.id.in_(ids)).order_by(Order.id).with_for_update(key_share=True)
                    .execution_options(populate_existing=True)).all()
    session.scalars(select(Fulfilment).where(Fulfilment.order_id.in_(ids)).order_by(Fulfilment.order_id, Fulfilment.id)
                    .with_for_update(key_share=True).execution_options(populate_existing=True)).all()


def try_lock(session: Session, order_id: int) -> Order | None:
    """`lock`, unless another transaction holds the order (then None, at
    once): for work that already holds stock rows, later in the lock order
    than orders, and so must not wait for one (stock arriving for a waiting
    fulfilment). What it skips is picked up by the next sweep."""
    order = session.scalar(select(Order).where(Order.id == order_id)
                           .with_for_update(key_share=True, skip_locked=True)
                           .execution_options(populate_existing=True))
    if order is None:
        return None
    lock(session, order)
    return order


def lock_fulfilment(session: Session, f: Fulfilment) -> Fulfilment:
    """`lock` for the order of `f`, then the parcels of `f`, all read afresh:
    what a packer, the dock, a rider, a courier's report or a return changes
    is guarded like a cancel, and whoever waited here sees what the first did."""
    order_id = session.scalar(select(Fulfilment.order_id).where(Fulfilment.id == f.id))
    lock(session, session.get(Order, order_id))
    session.scalars(select(Parcel).where(Parcel.fulfilment_id == f.id).order_by(Parcel.id)
                    .with_for_update(key_share=True).execution_options(populate_existing=True)).all()
    session.expire(f, ["parcels"])
    return f


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


def refresh(order: Order, session: Session | None = None) -> None:
    """Derive the order's status again; a change is an `order.status_changed`
    event. `session`: for an order built in memory and not added to it (intake).

    The event goes with the write: the ORM writes the status only when it
    differs from the one loaded, which is `previous`. So the feed's latest
    status is the stored one, whichever of two racing transactions commits
    last (its seq is later too)."""
    previous = order.status
    status = derive_status(order)
    order.updated_at = utcnow()
    order.status = status
    if status != previous:
        events.record(session or object_session(order), "order.status_changed", order=order,
                      data={"status": status.value, "previous": previous.value if previous else None})
