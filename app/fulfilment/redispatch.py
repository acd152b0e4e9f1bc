"""Re-dispatch (改派): move what a node cannot ship to another node.

The missing quantity leaves the fulfilment (its hold released) and is placed
again, never at a node that already failed this fulfilment's lineage. A
fulfilment with nothing left closes as `redispatched`; the new ones point
back to it, so the order document shows where every unit went.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.fulfilment import dispatch, events, orders, reserve
from app.fulfilment.errors import Refusal
from app.models import Fulfilment, FulfilmentLine, FulfilmentStatus, utcnow

MOVABLE = {FulfilmentStatus.reserved, FulfilmentStatus.picking, FulfilmentStatus.picked}


def failed_nodes(f: Fulfilment) -> set[int]:
    """Every node this fulfilment and its ancestors were sent to."""
    nodes: set[int] = set()
    while f is not None:
        if f.node_id is not None:
            nodes.add(f.node_id)
        f = f.redispatched_from
    return nodes


def redispatch(session: Session, f: Fulfilment, missing: dict[int, int] | None, reason: str,
               by: str | None = None) -> list[Fulfilment]:
    """Move `missing` (sku_id -> units; None: everything left) away from `f`.

    The order and its fulfilments are locked first and read afresh, lines
    too: a lead's re-dispatch, a short pick and a cancel of the same
    fulfilment take turns, and the second one moves only what is still
    there (never the same units twice, never out of a cancelled one)."""
    orders.lock(session, f.order)
    session.scalars(select(FulfilmentLine).where(FulfilmentLine.fulfilment_id == f.id)
                    .execution_options(populate_existing=True)).all()
    if f.status not in MOVABLE:
        raise Refusal("redispatch_not_allowed", fulfilment=f.ref, status=f.status.value)
    by_sku = {line.sku_id: line for line in f.lines}
    if missing is None:
        missing = {s: line.quantity for s, line in by_sku.items()}
    moved = {s: min(q, by_sku[s].quantity) for s, q in missing.items() if s in by_sku and q > 0}
    moved = {s: q for s, q in moved.items() if q > 0}
    if not moved:
        return []
    for sku_id, q in moved.items():
        reserve.release_quantity(session, by_sku[sku_id], q)
        by_sku[sku_id].quantity -= q
    from_node = f.node.code if f.node else None
    placed = dispatch.place(session, f.order, moved, f.delivery, exclude=failed_nodes(f), origin=f,
                            extra_reason={"trigger": reason, "from": f.ref, "from_node": from_node})
    now = utcnow()
    if all(line.quantity == 0 for line in f.lines):
        f.status = FulfilmentStatus.redispatched
    f.updated_at = now
    events.record(session, "fulfilment.redispatched", fulfilment=f,
                  data={"reason": reason, "by": by, "from_node": from_node,
                        "moved": dispatch.sku_codes(session, moved),
                        "to": [p.ref for p in placed], "closed": f.status == FulfilmentStatus.redispatched})
    orders.refresh(f.order)
    return placed
