"""Returns (退货入库): a parcel that left and came back is received into stock
at the node it shipped from.

A carrier may report a parcel `returned` (app.fulfilment.tracking), or a
courier (or one of our riders) may hand one back at the dock without any
report: both are real, and both are received here the same way. The dock
worker scans the parcel's label (tracking number or SSCC, read as the
outbound scan reads it), sees what is in it, scans the bin the items go
into, and confirms. In one transaction:

- each item's units go back on hand in that bin (`BinStock.on_hand`) and in
  the node's `Stock.on_hand`, by SQL increments (an upsert when the bin never
  held the SKU), so `Stock.on_hand` stays the sum of the bins and a
  reservation made at the same moment is never lost;
- the parcel becomes `returned`, with `returned_at`, `returned_by_id` and
  `returned_location_id` (the bin);
- the event `parcel.received_back` goes to the order's channel, its feed and
  its webhook: `data` has the tracking number, carrier, `items` (SKU and
  quantity each), `location` (the bin), `by` (the worker's badge) and
  `carrier_status` (the carrier's latest report, `returned` or another, or
  null when none came). (`parcel.returned` is the carrier's report itself.)
- the units are free stock again: fulfilments awaiting stock for those SKUs
  are dispatched (`dispatch.dispatch_waiting`, as a stock count does).

Which parcels: those that shipped from this node and are still out
(`ParcelStatus.shipped`), whatever the carrier reported last. Refused, with
nothing written: not a parcel label (return_unknown_parcel), another node's
(return_other_node), received back already (return_already_received), not
left yet, open or packed (return_not_shipped), intercepted at the dock
(return_intercepted: its units were never taken off stock, so receiving it
would count them twice), delivered (return_delivered: a customer's own
return has to be checked before its items are stock again), a bin that is
not at this node (return_unknown_bin), an empty scan (scan_unreadable).

The order: none of the contract's statuses move. The fulfilment stays what
it was (`shipped`, or `completed` when receipt was confirmed first); a
fulfilment with a parcel received back never becomes `delivered` (that
parcel was not), so the scheduler does not auto-complete it; the order's
status follows its fulfilments as always. The return is history: the event,
and the parcel's `status` in the order document, which reads `returned` (a
word that list already had from carrier reports) with its tracking history
kept. Refunding, or a new order to send the goods again, is the sales
platform's decision. Carrier reports that come after the parcel was received
back are kept as history only (tracking.report). A parcel received back does
not ship again (`parcel_received_back` at the outbound and rider scans).

The confirmation carries the handheld's scan id (`ScanRecord`, work
"return"): the same confirmation sent twice counts once.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from app.barcodes import read_scan
from app.fulfilment import clock, dispatch, events, orders, pick, tracking
from app.fulfilment.errors import Refusal
from app.fulfilment.ship import find_parcel
from app.models import (
    BinStock,
    Fulfilment,
    Location,
    Node,
    Parcel,
    ParcelDelivery,
    ParcelItem,
    ParcelStatus,
    ScanRecord,
    Stock,
    TrackingStatus,
    User,
    utcnow,
)

WORK = "return"
# Bins suggested per SKU on the screen.
HINTS = 2


@dataclass(frozen=True)
class Item:
    """One SKU of a returned parcel, and the bins it usually lives in: those
    it was picked from for this parcel, else this node's fullest."""

    sku: str
    name: str
    quantity: int
    bins: tuple[str, ...]


@dataclass(frozen=True)
class Received:
    """What an accepted confirmation did. `what`: received, or repeat (the
    same scan id again: nothing more happened)."""

    what: str
    parcel_id: int | None = None
    units: int = 0
    location: str | None = None
    dispatched: tuple[str, ...] = ()


# --- what may come back ---------------------------------------------------------------

def _node_words(node: Node | None) -> str:
    if node is None:
        return "-"
    return node.code if node.name == node.code else f"{node.name} {node.code}"


def check(parcel: Parcel, node: Node) -> Parcel:
    """The parcel may be received back at `node`, or the refusal saying why not."""
    f = parcel.fulfilment
    tn = parcel.tracking_number or "-"
    if f.node_id != node.id:
        raise Refusal("return_other_node", tracking=tn, node=_node_words(f.node))
    if parcel.status == ParcelStatus.returned:
        by = parcel.returned_by.name if parcel.returned_by is not None else "-"
        raise Refusal("return_already_received", tracking=tn, at=clock.wall(parcel.returned_at), by=by)
    if parcel.status == ParcelStatus.intercepted:
        raise Refusal("return_intercepted", tracking=tn, bins=pick.put_back_list(f))
    if parcel.status == ParcelStatus.delivered:
        raise Refusal("return_delivered", tracking=tn)
    if parcel.status != ParcelStatus.shipped:
        raise Refusal("return_not_shipped", tracking=tn)
    return parcel


def parcel_at(session: Session, node: Node, code: str) -> Parcel:
    """The returned parcel a label scan (tracking number or SSCC) names.
    Refusals: scan_unreadable, return_unknown_parcel, and those of `check`."""
    text = read_scan(code).text
    if not text:
        raise Refusal("scan_unreadable")
    parcel = find_parcel(session, code)
    if parcel is None:
        raise Refusal("return_unknown_parcel", code=text)
    return check(parcel, node)


def bin_at(session: Session, node: Node, code: str) -> Location:
    """A bin of this node by its label, compared as picking compares them
    (trimmed, any case). Refusals: scan_unreadable, return_unknown_bin."""
    text = read_scan(code).text
    if not text:
        raise Refusal("scan_unreadable")
    location = session.scalar(select(Location).where(Location.node_id == node.id,
                                                     func.upper(Location.code) == text.upper()))
    if location is None:
        raise Refusal("return_unknown_bin", code=text, node=node.code)
    return location


def items(session: Session, parcel: Parcel) -> list[Item]:
    """What is in the parcel, with the bins each SKU usually goes back to."""
    rows = list(session.scalars(select(ParcelItem).where(ParcelItem.parcel_id == parcel.id)
                                .options(selectinload(ParcelItem.sku)).order_by(ParcelItem.id)))
    sku_ids = [i.sku_id for i in rows]
    node_id = parcel.fulfilment.node_id
    taken = pick.units_by_bin(parcel.fulfilment)
    codes = dict(session.execute(select(Location.id, Location.code)
                                 .where(Location.id.in_({loc for loc, _ in taken}))).all()) if taken else {}
    picked: dict[int, list[str]] = {}
    for (location_id, sku_id), _units in sorted(taken.items(), key=lambda kv: (-kv[1], codes[kv[0][0]])):
        picked.setdefault(sku_id, []).append(codes[location_id])
    fullest: dict[int, list[str]] = {}
    if sku_ids:
        for sku_id, code in session.execute(
                select(BinStock.sku_id, Location.code).join(Location, Location.id == BinStock.location_id)
                .where(Location.node_id == node_id, BinStock.sku_id.in_(sku_ids), BinStock.on_hand > 0)
                .order_by(BinStock.on_hand.desc(), Location.code)):
            fullest.setdefault(sku_id, []).append(code)
    return [Item(i.sku.code, i.sku.name, i.quantity,
                 tuple((picked.get(i.sku_id) or fullest.get(i.sku_id) or [])[:HINTS])) for i in rows]


def recent(session: Session, node: Node, limit: int = 5) -> list[Parcel]:
    """The parcels last received back at the node, newest first."""
    return list(session.scalars(
        select(Parcel).join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id)
        .where(Fulfilment.node_id == node.id, Parcel.status == ParcelStatus.returned)
        .options(selectinload(Parcel.items), selectinload(Parcel.returned_location),
                 selectinload(Parcel.returned_by))
        .order_by(Parcel.returned_at.desc(), Parcel.id.desc()).limit(limit)))


def out_count(session: Session, node: Node) -> int:
    """Parcels of this node that a carrier reported returned and that are not
    received back yet: what the dock should expect."""
    return session.scalar(
        select(func.count()).select_from(Parcel).join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id)
        .join(ParcelDelivery, ParcelDelivery.parcel_id == Parcel.id)
        .where(Fulfilment.node_id == node.id, Parcel.status == ParcelStatus.shipped,
               ParcelDelivery.status == TrackingStatus.returned)) or 0


# --- receiving -----------------------------------------------------------------------------

def _insert(session: Session, model):
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(model)


def _put_back(session: Session, node: Node, location: Location, units: dict[int, int]) -> None:
    """Units on hand again in the bin and in the node's stock, as increments."""
    bins = _insert(session, BinStock)
    session.execute(bins.values([{"location_id": location.id, "sku_id": s, "on_hand": q}
                                 for s, q in sorted(units.items())])
                    .on_conflict_do_update(index_elements=["location_id", "sku_id"],
                                           set_={"on_hand": BinStock.on_hand + bins.excluded.on_hand}))
    stock = _insert(session, Stock)
    on_hand = Stock.on_hand + stock.excluded.on_hand
    session.execute(stock.values([{"node_id": node.id, "sku_id": s, "on_hand": q, "reserved": 0}
                                  for s, q in sorted(units.items())])
                    .on_conflict_do_update(index_elements=["node_id", "sku_id"], set_={
                        "on_hand": on_hand,
                        # A shortage the returned units cover is over.
                        "short_since": case((on_hand >= Stock.reserved, None), else_=Stock.short_since)}))


def receive(session: Session, user: User, scan_id: str, node: Node, code: str, bin_code: str) -> Received:
    """The parcel labelled `code` is back: its units go into bin `bin_code`
    (see the module rules). Refusals: those of `parcel_at` and `bin_at`."""
    # Two handhelds confirming one parcel: the second waits here (PostgreSQL)
    # behind the lock order (orders.lock_fulfilment) and then finds it counted
    # (the same scan id) or received (SQLite runs write transactions one at a time).
    found = find_parcel(session, code) if read_scan(code).text else None
    if found is not None:
        orders.lock_fulfilment(session, found.fulfilment)
    seen = session.scalar(select(ScanRecord).where(ScanRecord.scan_id == scan_id))
    if seen is not None:
        again = session.scalar(select(Parcel.id).where(Parcel.tracking_number == seen.code)) if seen.code else None
        return Received("repeat", parcel_id=again)
    parcel = parcel_at(session, node, code)
    location = bin_at(session, node, bin_code)
    units = {i.sku_id: i.quantity for i in parcel.items}
    f = parcel.fulfilment
    session.flush()
    _put_back(session, node, location, units)
    now = utcnow()
    parcel.status, parcel.returned_at, parcel.returned_by_id = ParcelStatus.returned, now, user.id
    parcel.returned_location_id = location.id
    delivery = tracking.delivery_of(session, parcel)
    skus = dispatch.sku_codes(session, units)
    events.record(session, "parcel.received_back", fulfilment=f, data={
        "tracking_number": parcel.tracking_number, "carrier": parcel.carrier,
        "items": [{"sku": sku, "quantity": q} for sku, q in skus.items()],
        "location": location.code, "by": user.code,
        "carrier_status": delivery.status.value if delivery is not None else None})
    total = sum(units.values())
    session.add(ScanRecord(scan_id=scan_id, user_id=user.id, work=WORK, action="receive",
                           code=parcel.tracking_number, quantity=total))
    parcel_id = parcel.id
    session.flush()
    # The stock rows changed in SQL: what the session holds of them is stale.
    session.expire_all()
    waiting = dispatch.dispatch_waiting(session, set(units))
    return Received("received", parcel_id=parcel_id, units=total, location=location.code,
                    dispatched=tuple(w.ref for w in waiting))
