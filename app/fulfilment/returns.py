"""Returns (退货入库): goods that come back are received at the dock.

Two kinds come back, and the dock scans either the parcel's label (tracking
number or SSCC, read as the outbound scan reads it) or a return's reference:

1. A parcel its carrier reported `returned` (app.fulfilment.tracking): it was
   never delivered, so it comes back sealed. The dock sees what is in it and
   each SKU's usual bin (where it was picked from for this parcel, else this
   node's fullest bin), scans a bin per SKU (or takes the usual one), and
   confirms; in one transaction:
   - each SKU's units go back on hand in its own bin (`BinStock.on_hand`) and
     in the node's `Stock.on_hand`, by SQL increments (an upsert when the bin
     never held the SKU), so `Stock.on_hand` stays the sum of the bins and a
     reservation made at the same moment is never lost;
   - the parcel becomes `returned`, with `returned_at`, `returned_by_id` and
     `returned_location_id` (the first SKU's bin), and each item its
     `returned_location_id`;
   - the event `parcel.received_back` goes to the order's channel, its feed
     and its webhook: `data` has the tracking number, carrier, `items` (SKU,
     quantity and `location`, its bin, each), `location` (the bin when every
     SKU went into one, else null), `by` (the worker's badge) and
     `carrier_status` (the carrier's latest report);
   - fulfilments awaiting stock for those SKUs are dispatched
     (`dispatch.dispatch_waiting`, as a stock count does).
   A same-city parcel our rider could not deliver (the rider reported a
   failed attempt) is received the same way: the rider is its carrier and
   brings it back. A shipped parcel its carrier has not reported returned is
   refused (return_not_reported): one loaded minutes ago and brought back in
   is not a return until the carrier says so or a return is authorised.

2. A customer's return (RMA, app.fulfilment.customer_returns), authorised
   by the platform or a lead, found by its reference (R-…), its return_id,
   or the label of a delivered parcel of the order. Received unit by unit:
   the dock scans a unit (or keys a quantity) of a SKU in the return and
   gives it a disposition, each a transaction of its own:
   - sellable: a bin is scanned (default the SKU's usual bin, where it was
     picked from for this order); the units are on hand in it and the node's
     stock, and waiting fulfilments are dispatched, as above;
   - damaged or quarantine: the units are held at the node out of stock, in
     `QuarantineStock` (`damaged`, `quarantined`): never in `on_hand`, so
     never reserved; the lead's returns page lists them.
   The line counts `received`, `sellable`, `damaged`, `quarantined`. When
   every unit is received (or the dock closes it with what came) the return
   is `received`, with the node, the worker and the time, and the event
   `return.received` carries each line's dispositions for the platform's
   refund. A return is received at a node that shipped the order.

Every write locks what it changes first (the parcel row, or the return
row) and checks its status again after the lock: of two handhelds confirming
the same parcel or the last unit of a return, the second waits, then is
refused (return_already_received, rma_already_received, rma_line_complete).
The handheld's scan id (`ScanRecord`, work "return") is looked up after the
lock, so a retry that waited behind its original answers "repeat".

Refused, with nothing written: not a label or a reference
(return_unknown_parcel), another node's (return_other_node,
rma_other_node), received back already (return_already_received,
rma_already_received), not left yet (return_not_shipped), intercepted at the
dock (return_intercepted: its units were never taken off stock), delivered
with no return authorised (return_delivered), shipped and not reported
returned (return_not_reported), a bin not at this node (return_unknown_bin),
a SKU without a bin (return_bin_needed), a unit not in the return or one too
many (rma_unknown_product, rma_not_in_return, rma_line_complete,
quantity_invalid), an empty scan (scan_unreadable).

The order: none of the contract's statuses move. A parcel received back
reads `returned` in the order document; a fulfilment with a parcel received
back never becomes `delivered`, so the scheduler does not auto-complete it.
Refunding, or sending the goods again, is the sales platform's decision.
Carrier reports that come after are history only (tracking.report). A
parcel received back does not ship again (`parcel_received_back`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, object_session, selectinload

from app.barcodes import read_scan
from app.fulfilment import clock, customer_returns, dispatch, events, orders, pick, scans, tracking
from app.fulfilment.errors import Refusal
from app.fulfilment.ship import find_parcel
from app.models import (
    Barcode,
    BinStock,
    CustomerReturn,
    Disposition,
    Fulfilment,
    FulfilmentStatus,
    Location,
    Node,
    Parcel,
    ParcelDelivery,
    ParcelItem,
    ParcelStatus,
    QuarantineStock,
    ReturnLine,
    ReturnStatus,
    ScanRecord,
    Sku,
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
    """What an accepted parcel confirmation did. `what`: received, or repeat
    (the same scan id again: nothing more happened). `bins`: SKU -> bin."""

    what: str
    parcel_id: int | None = None
    units: int = 0
    bins: tuple[tuple[str, str], ...] = ()
    dispatched: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReturnItem:
    """One line of a customer return as the dock sees it."""

    sku: str
    name: str
    quantity: int
    received: int
    sellable: int
    damaged: int
    quarantined: int
    bins: tuple[str, ...]

    @property
    def left(self) -> int:
        return self.quantity - self.received


@dataclass(frozen=True)
class Counted:
    """What an accepted unit scan (or closing) of a customer return did.
    `what`: counted, or repeat (the same scan id again)."""

    what: str
    ref: str
    sku: str | None = None
    units: int = 0
    disposition: Disposition | None = None
    location: str | None = None
    complete: bool = False
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
    delivery = tracking.delivery_of(object_session(parcel), parcel)
    if not reported_back(parcel, delivery):
        if f.status == FulfilmentStatus.completed:  # the customer confirmed receipt: delivered
            raise Refusal("return_delivered", tracking=tn)
        raise Refusal("return_not_reported", tracking=tn, shipped=clock.wall(parcel.shipped_at),
                      report=delivery.status.value if delivery is not None else "-")
    return parcel


def reported_back(parcel: Parcel, delivery: ParcelDelivery | None) -> bool:
    """Its carrier said it is coming back: a courier's `returned`, or our own
    same-city rider's failed attempt (the rider brings the parcel back)."""
    if delivery is None:
        return False
    return delivery.status == TrackingStatus.returned or (
        parcel.carrier == tracking.RIDER_CARRIER and delivery.status == TrackingStatus.failed_attempt)


def _customer_return_of(session: Session, parcel: Parcel) -> CustomerReturn | None:
    """The oldest return still expected for a delivered parcel's order with
    one of the parcel's SKUs in it."""
    delivered = parcel.status == ParcelStatus.delivered or (
        parcel.status == ParcelStatus.shipped and parcel.fulfilment.status == FulfilmentStatus.completed)
    if not delivered:
        return None
    skus = select(ParcelItem.sku_id).where(ParcelItem.parcel_id == parcel.id)
    return session.scalar(
        select(CustomerReturn).where(CustomerReturn.order_id == parcel.fulfilment.order_id,
                                     CustomerReturn.status == ReturnStatus.authorised,
                                     CustomerReturn.id.in_(select(ReturnLine.customer_return_id)
                                                           .where(ReturnLine.sku_id.in_(skus))))
        .order_by(CustomerReturn.id).limit(1))


def _shipping_nodes(session: Session, ret: CustomerReturn) -> list[Node]:
    """The nodes that shipped the order's parcels: where its return is received."""
    return list(session.scalars(
        select(Node).where(Node.id.in_(
            select(Fulfilment.node_id).join(Parcel, Parcel.fulfilment_id == Fulfilment.id)
            .where(Fulfilment.order_id == ret.order_id, Parcel.shipped_at.isnot(None))))
        .order_by(Node.code)))


def check_return(session: Session, ret: CustomerReturn, node: Node) -> CustomerReturn:
    """The customer return may be received at `node`, or the refusal saying why not."""
    if ret.status != ReturnStatus.authorised:
        by = ret.received_by.name if ret.received_by is not None else "-"
        raise Refusal("rma_already_received", ref=ret.ref, at=clock.wall(ret.received_at), by=by)
    nodes = _shipping_nodes(session, ret)
    if node.id not in {n.id for n in nodes}:
        raise Refusal("rma_other_node", ref=ret.ref, node=" / ".join(_node_words(n) for n in nodes) or "-")
    return ret


def return_by_reference(session: Session, text: str) -> CustomerReturn | None:
    """By the dock's reference (R-…), or by the platform's return_id when
    only one authorised return carries it."""
    ret = session.scalar(select(CustomerReturn).where(CustomerReturn.ref == text.upper()))
    if ret is not None:
        return ret
    found = list(session.scalars(select(CustomerReturn).where(CustomerReturn.return_id == text,
                                                              CustomerReturn.status == ReturnStatus.authorised)
                                 .limit(2)))
    return found[0] if len(found) == 1 else None


def found_at(session: Session, node: Node, code: str) -> Parcel | CustomerReturn:
    """What a scan at the returns screen names: a parcel that came back, or a
    customer return (its reference, or a delivered parcel's label). Refusals:
    scan_unreadable, return_unknown_parcel, those of `check` and `check_return`."""
    text = read_scan(code).text
    if not text:
        raise Refusal("scan_unreadable")
    parcel = find_parcel(session, code)
    if parcel is not None:
        ret = _customer_return_of(session, parcel)
        if ret is not None:
            return check_return(session, ret, node)
        return check(parcel, node)
    ret = return_by_reference(session, text)
    if ret is None:
        raise Refusal("return_unknown_parcel", code=text)
    return check_return(session, ret, node)


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


def return_at(session: Session, node: Node, ref: str) -> CustomerReturn:
    """The customer return with this reference, receivable here."""
    ret = session.scalar(select(CustomerReturn).where(CustomerReturn.ref == ref.strip().upper()))
    if ret is None:
        raise Refusal("return_unknown_parcel", code=ref.strip()[:64] or "-")
    return check_return(session, ret, node)


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


def usual_bins(session: Session, node_id: int, fulfilments: list[Fulfilment],
               sku_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """sku id -> the bins its units usually go back to: those they were
    picked from for these fulfilments (most units first), else the node's
    fullest bins of the SKU."""
    taken: dict[tuple[int, int], int] = {}
    for f in fulfilments:
        for key, units in pick.units_by_bin(f).items():
            taken[key] = taken.get(key, 0) + units
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
    return {s: tuple((picked.get(s) or fullest.get(s) or [])[:HINTS]) for s in sku_ids}


def items(session: Session, parcel: Parcel) -> list[Item]:
    """What is in the parcel, with the bins each SKU usually goes back to."""
    rows = list(session.scalars(select(ParcelItem).where(ParcelItem.parcel_id == parcel.id)
                                .options(selectinload(ParcelItem.sku)).order_by(ParcelItem.id)))
    bins = usual_bins(session, parcel.fulfilment.node_id, [parcel.fulfilment], [i.sku_id for i in rows])
    return [Item(i.sku.code, i.sku.name, i.quantity, bins[i.sku_id]) for i in rows]


def _usual_bins_here(session: Session, ret: CustomerReturn, node: Node,
                     sku_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """Where a returned SKU goes back at this node: where it was picked from
    for this order here, else the node's fullest bin."""
    return usual_bins(session, node.id, [f for f in ret.order.fulfilments if f.node_id == node.id], sku_ids)


def return_items(session: Session, ret: CustomerReturn, node: Node) -> list[ReturnItem]:
    """The return's lines, with the bins each SKU usually goes back to here."""
    lines = list(session.scalars(select(ReturnLine).where(ReturnLine.customer_return_id == ret.id)
                                 .options(selectinload(ReturnLine.sku)).order_by(ReturnLine.id)))
    bins = _usual_bins_here(session, ret, node, [line.sku_id for line in lines])
    return [ReturnItem(line.sku.code, line.sku.name, line.quantity, line.received, line.sellable, line.damaged,
                       line.quarantined, bins[line.sku_id]) for line in lines]


def return_product(session: Session, ret: CustomerReturn, node: Node, code: str) -> ReturnItem:
    """The line of the return a product scan (barcode or SKU code) is for,
    with units still to receive. Refusals: scan_unreadable,
    rma_unknown_product, rma_not_in_return, rma_line_complete."""
    scan = read_scan(code)
    if not scan.text:
        raise Refusal("scan_unreadable")
    sku = session.scalar(select(Sku).join(Barcode, Barcode.sku_id == Sku.id)
                         .where(Barcode.code.in_(scan.product_codes())).limit(1))
    if sku is None:
        sku = session.scalar(select(Sku).where(Sku.code == scan.text.upper()))
    if sku is None:
        raise Refusal("rma_unknown_product", code=scan.text)
    lines = return_items(session, ret, node)
    line = next((i for i in lines if i.sku == sku.code), None)
    if line is None:
        raise Refusal("rma_not_in_return", sku=sku.code, ref=ret.ref, skus=", ".join(i.sku for i in lines))
    if line.left <= 0:
        raise Refusal("rma_line_complete", quantity=line.quantity, sku=sku.code, ref=ret.ref)
    return line


def recent(session: Session, node: Node, limit: int = 5) -> list[Parcel]:
    """The parcels last received back at the node, newest first."""
    return list(session.scalars(
        select(Parcel).join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id)
        .where(Fulfilment.node_id == node.id, Parcel.status == ParcelStatus.returned)
        .options(selectinload(Parcel.items).selectinload(ParcelItem.returned_location),
                 selectinload(Parcel.returned_location), selectinload(Parcel.returned_by))
        .order_by(Parcel.returned_at.desc(), Parcel.id.desc()).limit(limit)))


def recent_returns(session: Session, node: Node, limit: int = 5) -> list[CustomerReturn]:
    """The customer returns last received at the node, newest first."""
    return list(session.scalars(
        select(CustomerReturn).where(CustomerReturn.node_id == node.id,
                                     CustomerReturn.status == ReturnStatus.received)
        .options(selectinload(CustomerReturn.lines), selectinload(CustomerReturn.received_by),
                 selectinload(CustomerReturn.order))
        .order_by(CustomerReturn.received_at.desc(), CustomerReturn.id.desc()).limit(limit)))


def expected_returns(session: Session, node: Node) -> list[CustomerReturn]:
    """Customer returns authorised for orders this node shipped, not received yet."""
    return list(session.scalars(
        select(CustomerReturn).where(CustomerReturn.status == ReturnStatus.authorised, CustomerReturn.order_id.in_(
            select(Fulfilment.order_id).join(Parcel, Parcel.fulfilment_id == Fulfilment.id)
            .where(Fulfilment.node_id == node.id, Parcel.shipped_at.isnot(None))))
        .options(selectinload(CustomerReturn.lines).selectinload(ReturnLine.sku),
                 selectinload(CustomerReturn.order))
        .order_by(CustomerReturn.authorised_at, CustomerReturn.id)))


def out_count(session: Session, node: Node) -> int:
    """Parcels of this node that a carrier reported returned and that are not
    received back yet: what the dock should expect."""
    return session.scalar(
        select(func.count()).select_from(Parcel).join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id)
        .join(ParcelDelivery, ParcelDelivery.parcel_id == Parcel.id)
        .where(Fulfilment.node_id == node.id, Parcel.status == ParcelStatus.shipped,
               ParcelDelivery.status == TrackingStatus.returned)) or 0


def held_out(session: Session, node: Node) -> list[tuple[Sku, QuarantineStock]]:
    """Returned units held at the node out of stock (quarantined, damaged)."""
    return [tuple(row) for row in session.execute(
        select(Sku, QuarantineStock).join(Sku, Sku.id == QuarantineStock.sku_id)
        .where(QuarantineStock.node_id == node.id,
               (QuarantineStock.quarantined > 0) | (QuarantineStock.damaged > 0))
        .order_by(Sku.code))]


# --- writing stock ---------------------------------------------------------------------------

def _insert(session: Session, model):
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(model)


def _put_back(session: Session, node: Node, units: dict[tuple[int, int], int]) -> None:
    """Units on hand again in their bins and in the node's stock, as
    increments. `units`: (location id, sku id) -> units."""
    bins = _insert(session, BinStock)
    session.execute(bins.values([{"location_id": loc, "sku_id": s, "on_hand": q}
                                 for (loc, s), q in sorted(units.items())])
                    .on_conflict_do_update(index_elements=["location_id", "sku_id"],
                                           set_={"on_hand": BinStock.on_hand + bins.excluded.on_hand}))
    per_sku: dict[int, int] = {}
    for (_loc, s), q in units.items():
        per_sku[s] = per_sku.get(s, 0) + q
    stock = _insert(session, Stock)
    on_hand = Stock.on_hand + stock.excluded.on_hand
    session.execute(stock.values([{"node_id": node.id, "sku_id": s, "on_hand": q, "reserved": 0}
                                  for s, q in sorted(per_sku.items())])
                    .on_conflict_do_update(index_elements=["node_id", "sku_id"], set_={
                        "on_hand": on_hand,
                        # A shortage the returned units cover is over.
                        "short_since": case((on_hand >= Stock.reserved, None), else_=Stock.short_since)}))


def _hold_out(session: Session, node: Node, sku_id: int, units: int, disposition: Disposition) -> None:
    """Units held at the node out of stock, as an increment."""
    column = "damaged" if disposition == Disposition.damaged else "quarantined"
    held = _insert(session, QuarantineStock)
    session.execute(held.values(node_id=node.id, sku_id=sku_id, updated_at=utcnow(),
                                **{"quarantined": 0, "damaged": 0, column: units})
                    .on_conflict_do_update(index_elements=["node_id", "sku_id"], set_={
                        column: getattr(QuarantineStock, column) + getattr(held.excluded, column),
                        "updated_at": held.excluded.updated_at}))


# --- a parcel its carrier brought back ----------------------------------------------------------

def bins_for(session: Session, code: str, chosen: list[str]) -> dict[str, str]:
    """The bins the screen chose, one per item in the order `items` lists
    them, as `receive` takes them (SKU code -> bin label)."""
    parcel = find_parcel(session, code) if read_scan(code).text else None
    if parcel is None:
        return {}
    return {i.sku.code: b for i, b in zip(sorted(parcel.items, key=lambda i: i.id), chosen)}


def receive(session: Session, user: User, scan_id: str, node: Node, code: str, bins: dict[str, str]) -> Received:
    """The parcel labelled `code` is back: each SKU's units go into its bin,
    `bins` (SKU code -> bin label; see the module rules). Refusals: those
    of `parcel_at` and `bin_at`, return_bin_needed."""
    text = read_scan(code).text
    found = find_parcel(session, code) if text else None
    if found is None:
        raise Refusal("return_unknown_parcel", code=text) if text else Refusal("scan_unreadable")
    # Two handhelds confirming one parcel: the second waits here (PostgreSQL),
    # behind the lock order (orders.lock_fulfilment: order, fulfilments, their
    # parcels), and then finds it received (SQLite runs write transactions one
    # at a time).
    orders.lock_fulfilment(session, found.fulfilment)
    parcel = found
    seen = scans.seen(session, user, scan_id)  # after the lock: a retry that waited behind its original
    if seen is not None:
        again = session.scalar(select(Parcel.id).where(Parcel.tracking_number == seen.code)) if seen.code else None
        return Received("repeat", parcel_id=again)
    check(parcel, node)
    wanted = {sku.strip().upper(): b for sku, b in bins.items()}
    placed: list[tuple[ParcelItem, Location]] = []
    for item in sorted(parcel.items, key=lambda i: i.id):
        label = wanted.get(item.sku.code)
        if not label:
            raise Refusal("return_bin_needed", sku=item.sku.code)
        placed.append((item, bin_at(session, node, label)))
    f = parcel.fulfilment
    session.flush()
    _put_back(session, node, {(loc.id, i.sku_id): i.quantity for i, loc in placed})
    now = utcnow()
    parcel.status, parcel.returned_at, parcel.returned_by_id = ParcelStatus.returned, now, user.id
    parcel.returned_location_id = placed[0][1].id
    for i, loc in placed:
        i.returned_location_id = loc.id
    delivery = tracking.delivery_of(session, parcel)
    locations = {loc.code for _, loc in placed}
    events.record(session, "parcel.received_back", fulfilment=f, data={
        **tracking.parcel_data(parcel, delivery),
        "items": [{"sku": i.sku.code, "quantity": i.quantity, "location": loc.code} for i, loc in placed],
        "location": placed[0][1].code if len(locations) == 1 else None, "by": user.code,
        "carrier_status": delivery.status.value if delivery is not None else None})
    total = sum(i.quantity for i, _ in placed)
    session.add(ScanRecord(scan_id=scan_id, user_id=user.id, work=WORK, action="receive",
                           code=parcel.tracking_number, quantity=total))
    parcel_id = parcel.id
    sku_ids = {i.sku_id for i, _ in placed}
    where = tuple((i.sku.code, loc.code) for i, loc in placed)
    session.flush()
    # The stock rows changed in SQL: what the session holds of them is stale.
    session.expire_all()
    waiting = dispatch.dispatch_waiting(session, sku_ids)
    return Received("received", parcel_id=parcel_id, units=total, bins=where,
                    dispatched=tuple(w.ref for w in waiting))


# --- a customer's return, unit by unit ----------------------------------------------------------

def _locked_return(session: Session, node: Node, ref: str) -> CustomerReturn:
    """The return, its row locked and read afresh; its lines with it."""
    found = session.scalar(select(CustomerReturn.id).where(CustomerReturn.ref == ref.strip().upper()))
    if found is None:
        raise Refusal("return_unknown_parcel", code=ref.strip()[:64] or "-")
    # Two handhelds on one return: the second waits here, then counts on what
    # the first left (SQLite runs write transactions one at a time).
    ret = session.scalar(select(CustomerReturn).where(CustomerReturn.id == found).with_for_update()
                         .execution_options(populate_existing=True))
    session.scalars(select(ReturnLine).where(ReturnLine.customer_return_id == ret.id)
                    .execution_options(populate_existing=True)).all()
    return ret


def receive_units(session: Session, user: User, scan_id: str, node: Node, ref: str, sku: str, quantity: int,
                  disposition: Disposition, bin_code: str | None = None) -> Counted:
    """`quantity` units of `sku` of return `ref` came back, with `disposition`
    (sellable: into bin `bin_code`, else the SKU's usual bin). Refusals:
    those of `check_return`, rma_not_in_return, rma_line_complete,
    quantity_invalid, return_bin_needed and those of `bin_at`."""
    ret = _locked_return(session, node, ref)
    if scans.seen(session, user, scan_id) is not None:
        return Counted("repeat", ret.ref)
    check_return(session, ret, node)
    line = next((x for x in ret.lines if x.sku.code == sku.strip().upper()), None)
    if line is None:
        raise Refusal("rma_not_in_return", sku=sku.strip()[:64], ref=ret.ref,
                      skus=", ".join(x.sku.code for x in ret.lines))
    left = line.quantity - line.received
    if left <= 0:
        raise Refusal("rma_line_complete", quantity=line.quantity, sku=line.sku.code, ref=ret.ref)
    if not 1 <= quantity <= left:
        raise Refusal("quantity_invalid", most=left)
    location = None
    if disposition == Disposition.sellable:
        label = bin_code or next(iter(_usual_bins_here(session, ret, node, [line.sku_id])[line.sku_id]), None)
        if not label:
            raise Refusal("return_bin_needed", sku=line.sku.code)
        location = bin_at(session, node, label)
        _put_back(session, node, {(location.id, line.sku_id): quantity})
        line.sellable += quantity
    else:
        _hold_out(session, node, line.sku_id, quantity, disposition)
        if disposition == Disposition.damaged:
            line.damaged += quantity
        else:
            line.quarantined += quantity
    line.received += quantity
    events.record(session, "return.counted", order=ret.order, node=node, data={
        **customer_returns.document(ret), "by": user.code,
        "unit": {"sku": line.sku.code, "quantity": quantity, "disposition": disposition.value,
                 "location": location.code if location else None}})
    session.add(ScanRecord(scan_id=scan_id, user_id=user.id, work=WORK, action=disposition.value,
                           code=f"{ret.ref} {line.sku.code}"[:200], quantity=quantity))
    complete = all(x.received >= x.quantity for x in ret.lines)
    if complete:
        _close(session, ret, user, node)
    sku_code, sku_id, ref_ = line.sku.code, line.sku_id, ret.ref
    session.flush()
    dispatched: tuple[str, ...] = ()
    if disposition == Disposition.sellable:
        session.expire_all()  # the stock rows changed in SQL
        dispatched = tuple(w.ref for w in dispatch.dispatch_waiting(session, {sku_id}))
    return Counted("counted", ref_, sku_code, quantity, disposition, location.code if location else None,
                   complete, dispatched)




def close(session: Session, user: User, scan_id: str, node: Node, ref: str) -> Counted:
    """The dock closes return `ref` with what came (the rest never will).
    Refusals: those of `check_return`, rma_nothing_received."""
    ret = _locked_return(session, node, ref)
    if scans.seen(session, user, scan_id) is not None:
        return Counted("repeat", ret.ref)
    check_return(session, ret, node)
    came = sum(x.received for x in ret.lines)
    if came == 0:
        raise Refusal("rma_nothing_received", ref=ret.ref)
    session.add(ScanRecord(scan_id=scan_id, user_id=user.id, work=WORK, action="close", code=ret.ref,
                           quantity=came))
    _close(session, ret, user, node)
    return Counted("counted", ret.ref, units=came, complete=True)


def _close(session: Session, ret: CustomerReturn, user: User, node: Node) -> None:
    # The node as an object: the event's document names it before the flush.
    ret.status, ret.received_at, ret.received_by_id, ret.node = ReturnStatus.received, utcnow(), user.id, node
    events.record(session, "return.received", order=ret.order, node=node,
                  data={**customer_returns.document(ret), "by": user.code})
