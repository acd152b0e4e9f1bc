"""Holds (挂起) on fulfilments, and the auto-cancel of fulfilments that waited
too long for stock.

A hold says "not now": a reason, who placed it, and optionally until when.
A fulfilment is held while any of its holds is active (not released, and its
`until` not passed); no pick list takes a held fulfilment (`not_held()` is
the filter picking uses). Holds may be placed on any fulfilment that has not
shipped; several can be active at once. A hold whose `until` passes stops
holding at once; the scheduler then records its release (`release_expired`).

Auto-cancel: a fulfilment `awaiting_stock` for longer than the configured
age (since it entered that status: its latest `fulfilment.awaiting_stock`
event, else its creation) is cancelled with cancel's semantics for that one
fulfilment: whatever it holds is released, the event names the reason, and
the order's status follows (cancelled when nothing else of it lives, with an
`order.cancelled` event, else `order.partially_cancelled`: cancel's rule,
`cancel.stop`). A held fulfilment is left alone: someone decided to wait
for it.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from app.fulfilment import cancel, events, orders
from app.fulfilment.errors import Refusal
from app.models import Event, Fulfilment, FulfilmentHold, FulfilmentStatus, utcnow

AUTO_CANCEL_REASON = "awaiting_stock_timeout"


def _active(now: dt.datetime):
    return and_(FulfilmentHold.released_at.is_(None),
                or_(FulfilmentHold.until.is_(None), FulfilmentHold.until > now))


def not_held(fulfilment_id=Fulfilment.id, now: dt.datetime | None = None):
    """A WHERE clause: the fulfilment carries no active hold. For queries over
    `Fulfilment`, e.g. `.where(..., hold.not_held())`."""
    return ~exists().where(FulfilmentHold.fulfilment_id == fulfilment_id, _active(now or utcnow()))


def active_holds(session: Session, f: Fulfilment, now: dt.datetime | None = None) -> list[FulfilmentHold]:
    return list(session.scalars(select(FulfilmentHold).where(
        FulfilmentHold.fulfilment_id == f.id, _active(now or utcnow())).order_by(FulfilmentHold.id)))


def holds_by_fulfilment(session: Session, ids: list[int], now: dt.datetime | None = None
                        ) -> dict[int, list[FulfilmentHold]]:
    out: dict[int, list[FulfilmentHold]] = {i: [] for i in ids}
    if ids:
        for h in session.scalars(select(FulfilmentHold).where(
                FulfilmentHold.fulfilment_id.in_(ids), _active(now or utcnow())).order_by(FulfilmentHold.id)):
            out[h.fulfilment_id].append(h)
    return out


def is_held(session: Session, f: Fulfilment) -> bool:
    return bool(active_holds(session, f))


def place_hold(session: Session, f: Fulfilment, reason: str, by: str,
               until: dt.datetime | None = None) -> FulfilmentHold:
    """Hold `f` for `reason`, placed by `by` (a badge code, channel or
    "system"), until `until` or until released. Under the order's lock, so
    a hold never lands on a fulfilment that shipped meanwhile."""
    orders.lock(session, f.order)
    if f.status not in orders.NOT_YET_SHIPPED:
        raise Refusal("hold_not_allowed", fulfilment=f.ref, status=f.status.value)
    reason = (reason or "").strip()
    if not reason:
        raise Refusal("hold_reason_needed")
    now = utcnow()
    if until is not None and until <= now:
        raise Refusal("hold_until_past", fulfilment=f.ref)
    h = FulfilmentHold(fulfilment_id=f.id, reason=reason[:200], placed_by=by[:64], placed_at=now, until=until)
    session.add(h)
    session.flush()
    f.updated_at = now
    events.record(session, "fulfilment.held", fulfilment=f,
                  data={"hold": h.id, "reason": h.reason, "by": h.placed_by,
                        "until": until.isoformat() if until else None, "status": f.status.value})
    return h


def release_hold(session: Session, f: Fulfilment, by: str, hold_id: int | None = None) -> int:
    """Release one hold (`hold_id`) or all active holds of `f`. Returns how
    many were released; releasing what is not held is refused."""
    orders.lock(session, f.order)
    holds = active_holds(session, f)
    if hold_id is not None:
        holds = [h for h in holds if h.id == hold_id]
    if not holds:
        raise Refusal("hold_not_found", fulfilment=f.ref)
    now = utcnow()
    for h in holds:
        h.released_at, h.released_by = now, by[:64]
        events.record(session, "fulfilment.hold_released", fulfilment=f,
                      data={"hold": h.id, "reason": h.reason, "by": h.released_by})
    f.updated_at = now
    return len(holds)


def release_expired(session: Session, now: dt.datetime | None = None) -> int:
    """Record the release of holds whose `until` has passed (they stopped
    holding at that moment already)."""
    now = now or utcnow()
    due = session.scalars(select(FulfilmentHold).where(
        FulfilmentHold.released_at.is_(None), FulfilmentHold.until <= now)
        .order_by(FulfilmentHold.id).with_for_update(skip_locked=True)).all()
    for h in due:
        h.released_at, h.released_by = h.until, "system"
        events.record(session, "fulfilment.hold_released", fulfilment=h.fulfilment,
                      data={"hold": h.id, "reason": h.reason, "by": "system", "expired": True})
    return len(due)


# --- auto-cancel -------------------------------------------------------------------------

def waiting_since():
    """When each fulfilment last entered awaiting_stock (a correlated scalar)."""
    return func.coalesce(
        select(func.max(Event.at)).where(Event.fulfilment_id == Fulfilment.id,
                                         Event.type == "fulfilment.awaiting_stock").scalar_subquery(),
        Fulfilment.created_at)


def stale_awaiting_stock(session: Session, max_age: dt.timedelta, now: dt.datetime | None = None
                         ) -> list[Fulfilment]:
    """Candidates, read without a lock: `cancel_fulfilment` locks each one's
    order first (the lock order) and checks it again."""
    now = now or utcnow()
    return list(session.scalars(
        select(Fulfilment).where(Fulfilment.status == FulfilmentStatus.awaiting_stock,
                                 waiting_since() <= now - max_age, not_held(now=now))
        .order_by(Fulfilment.id)))


def cancel_fulfilment(session: Session, f: Fulfilment, reason: str, data: dict | None = None,
                      only_if: FulfilmentStatus | None = None) -> bool:
    """Cancel one unshipped fulfilment (not the whole order) with cancel's
    rule (`cancel.stop`): release what it holds, record why; the order is
    cancelled if nothing else of it lives, else partially cancelled. Returns
    False, changing nothing, if it can no longer be stopped, is no longer
    `only_if`, or is held (re-read under the order's lock)."""
    orders.lock(session, f.order)
    if not cancel.stoppable(f) or (only_if is not None and f.status != only_if) or is_held(session, f):
        return False
    cancel.stop(session, f.order, [f], reason, data)
    return True


def cancel_stale(session: Session, max_age: dt.timedelta, now: dt.datetime | None = None) -> int:
    """The scheduler's job: cancel fulfilments awaiting stock past `max_age`.
    Two servers running it at once: the second waits for each order's lock
    and finds that fulfilment cancelled already."""
    now = now or utcnow()
    data = {"limit_hours": round(max_age.total_seconds() / 3600, 2)}
    return sum(cancel_fulfilment(session, f, AUTO_CANCEL_REASON, data, only_if=FulfilmentStatus.awaiting_stock)
               for f in stale_awaiting_stock(session, max_age, now))
