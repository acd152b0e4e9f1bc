"""Cycle counts (盘点): a count is what a counter sees on the shelf.

Units picked for a fulfilment that has not shipped yet are in a tote or on
the pack bench, not on the shelf, but they are still in the bin's on_hand:
shipping takes them off (`reserve.consume`, from `pick.units_by_bin`). So,
for one bin and SKU:

    in totes       = units picked from the bin for fulfilments not yet shipped
    book on shelf  = bin on_hand - in totes
    variance       = counted - book on shelf
    applying it    : bin on_hand += variance   (= counted + in totes)

Counting a busy bin mid-day therefore loses nothing: the picked units stay
in the books until they ship. Applying the *variance* (not the figure) also
keeps a count a lead approves later true to what shipped in between.

A handheld count whose variance is within `Settings.count_variance_units`
is applied at once; a larger one waits for a lead to approve it, order a
recount or reject it. Counts through the API or a CSV import are an
admin's and are applied at once. Every count is a `StockCount` row and a
`stock.counted` event (book shelf figure, counted, in totes, variance, who,
when).

Locks: the node's stock row of the SKU, then its bin rows (FOR UPDATE), the
order shipping takes them in (`reserve.consume` lowers the stock row, then
the bins), and `in totes` is read under them, so a shipment of the same bin
commits wholly before or wholly after the count. A pick from the bin while a
handheld count was going on cannot be placed before or after what the
counter saw, so that count is not applied: it goes back as a recount.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.barcodes import read_scan
from app.fulfilment import events, scans
from app.fulfilment.errors import Refusal
from app.models import (
    Barcode,
    BinStock,
    CountStatus,
    Fulfilment,
    FulfilmentLine,
    FulfilmentStatus,
    Location,
    Node,
    PickLine,
    ScanRecord,
    Sku,
    Stock,
    StockCount,
    User,
    utcnow,
)

# Fulfilments whose picked units are in totes: picked from the bin, still in
# its on_hand until shipping takes them off (pick uses this rule too).
UNITS_IN_TOTES = (FulfilmentStatus.reserved, FulfilmentStatus.picking, FulfilmentStatus.picked,
                  FulfilmentStatus.packed)
MAX_COUNT = 100_000


@dataclass(frozen=True)
class Counted:
    """What a handheld count did. `what`: applied, pending_approval (over the
    limit, a lead decides), recount (picked from during the count), repeat
    (the same scan id again)."""

    what: str
    count_id: int | None = None


# --- the rule --------------------------------------------------------------------------

def in_totes(session: Session, location_id: int, sku_id: int) -> int:
    """Units of the SKU picked from the bin and not yet shipped."""
    return int(session.scalar(
        select(func.coalesce(func.sum(PickLine.picked), 0))
        .join(FulfilmentLine, FulfilmentLine.id == PickLine.fulfilment_line_id)
        .join(Fulfilment, Fulfilment.id == FulfilmentLine.fulfilment_id)
        .where(PickLine.location_id == location_id, PickLine.sku_id == sku_id,
               Fulfilment.status.in_(UNITS_IN_TOTES))) or 0)


def _lock(session: Session, node: Node, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], BinStock]:
    """Lock the stock rows of the keys' SKUs, then their bins (made where
    missing), in id order, and return the bins read afresh."""
    from app import masterdata  # masterdata imports the pipeline; import late

    keys = sorted(set(keys))
    sku_ids = sorted({sku for _, sku in keys})
    stock_ids = sorted(s.id for s in masterdata.stock_rows(session, node, sku_ids).values())
    session.execute(select(Stock.id).where(Stock.id.in_(stock_ids)).order_by(Stock.id).with_for_update())
    have = set(session.execute(select(BinStock.location_id, BinStock.sku_id).where(
        BinStock.location_id.in_({loc for loc, _ in keys}), BinStock.sku_id.in_(sku_ids))).all())
    for loc, sku in keys:
        if (loc, sku) not in have:
            session.add(BinStock(location_id=loc, sku_id=sku, on_hand=0))
    session.flush()
    bins = session.scalars(
        select(BinStock).where(BinStock.location_id.in_({loc for loc, _ in keys}), BinStock.sku_id.in_(sku_ids))
        .order_by(BinStock.location_id, BinStock.sku_id).with_for_update()
        .execution_options(populate_existing=True)).all()
    wanted = set(keys)
    return {(b.location_id, b.sku_id): b for b in bins if (b.location_id, b.sku_id) in wanted}


def _measure(session: Session, count: StockCount, b: BinStock, counted: int, by: str) -> None:
    """The count against the books, under the locks."""
    totes = in_totes(session, b.location_id, b.sku_id)
    count.in_totes = totes
    count.book_on_shelf = b.on_hand - totes
    count.counted = counted
    count.variance = counted - count.book_on_shelf
    count.counted_by, count.counted_at = by, utcnow()


def _apply(session: Session, count: StockCount, b: BinStock) -> None:
    # The variance, not the figure: units shipped since the count left the
    # bin's on_hand and the shelf figure alike.
    b.on_hand = max(0, b.on_hand + (count.variance or 0))
    count.status, count.applied_at, count.open_key = CountStatus.applied, utcnow(), None


def _event(session: Session, node: Node, counts: list[StockCount], settled: Mapping | None) -> None:
    bins = dict(session.execute(select(Location.id, Location.code)
                                .where(Location.id.in_({c.location_id for c in counts}))).all())
    skus = dict(session.execute(select(Sku.id, Sku.code).where(Sku.id.in_({c.sku_id for c in counts}))).all())
    events.record(session, "stock.counted", node=node, data={
        "items": len(counts), "shortages": (settled or {}).get("shortages", {}),
        "counts": [{"location": bins[c.location_id], "sku": skus[c.sku_id], "book_on_shelf": c.book_on_shelf,
                    "counted": c.counted, "in_totes": c.in_totes, "variance": c.variance, "status": c.status.value,
                    "reason": c.reason, "by": c.counted_by, "at": c.counted_at.isoformat()} for c in counts]})


def _open_request(session: Session, location_id: int, sku_id: int) -> StockCount | None:
    return session.scalar(select(StockCount).where(StockCount.open_key == _key(location_id, sku_id)))


def _key(location_id: int, sku_id: int) -> str:
    return f"{location_id}:{sku_id}"


def _supersede(session: Session, count: StockCount) -> None:
    """A newer count of the bin replaces variances still waiting for a lead."""
    session.execute(update(StockCount).where(
        StockCount.location_id == count.location_id, StockCount.sku_id == count.sku_id,
        StockCount.status == CountStatus.pending_approval, StockCount.id != count.id)
        .values(status=CountStatus.rejected, decided_by="superseded", decided_at=utcnow())
        .execution_options(synchronize_session=False))


def count_shelf(session: Session, node: Node, counted: Mapping[tuple[int, int], int], by: str,
                reason: str) -> dict:
    """Counts by an admin (API, CSV import), applied at once: each bin's
    on_hand becomes what was counted on its shelf plus its units in totes."""
    from app import masterdata

    bins = _lock(session, node, counted)
    counts = []
    for key, figure in sorted(counted.items()):
        count = _open_request(session, *key) or StockCount(
            node_id=node.id, location_id=key[0], sku_id=key[1], reason=reason, status=CountStatus.requested)
        session.add(count)
        _measure(session, count, bins[key], figure, by)
        _apply(session, count, bins[key])
        _supersede(session, count)
        counts.append(count)
    session.flush()
    settled = masterdata.settle_stock(session, node, {sku for _, sku in counted})
    _event(session, node, counts, settled)
    return {**settled, "counts": [{"location": c.location.code, "sku": c.sku.code, "book_on_shelf": c.book_on_shelf,
                                   "counted": c.counted, "in_totes": c.in_totes, "variance": c.variance}
                                  for c in counts]}


# --- asking for a count ----------------------------------------------------------------

def request(session: Session, node: Node, location: Location, sku: Sku, reason: str, by: User | str) -> StockCount:
    """Ask the counters to count `sku` in `location` (a task on /count). One
    open request per bin and SKU: asking again returns the open one."""
    key = _key(location.id, sku.id)
    who = by.code if isinstance(by, User) else by
    while True:
        existing = session.scalar(select(StockCount).where(StockCount.open_key == key))
        if existing is not None:
            return existing
        count = StockCount(node_id=node.id, location_id=location.id, sku_id=sku.id, status=CountStatus.requested,
                           reason=reason, open_key=key, requested_by=who, requested_at=utcnow())
        try:
            with session.begin_nested():
                session.add(count)
                session.flush()
        except IntegrityError:  # the unique open_key: asked just now by another request; take that one
            continue
        events.record(session, "count.requested", node=node,
                      data={"location": location.code, "sku": sku.code, "reason": reason, "by": who})
        return count


def request_by_codes(session: Session, lead: User, location_code: str, sku_code: str) -> StockCount:
    """A lead asks for a count of a bin and SKU at their node."""
    node = session.get(Node, lead.node_id)
    location = bin_at(session, node, location_code)
    sku = session.scalar(select(Sku).where(func.upper(Sku.code) == sku_code.strip().upper()))
    if sku is None:
        sku = product_of(session, sku_code)
    return request(session, node, location, sku, reason="lead", by=lead)


# --- the handheld ------------------------------------------------------------------------

def bin_at(session: Session, node: Node, code: str) -> Location:
    text = read_scan(code).text
    if not text:
        raise Refusal("scan_unreadable")
    location = session.scalar(select(Location).where(Location.node_id == node.id,
                                                     func.upper(Location.code) == text.upper()))
    if location is None:
        raise Refusal("count_unknown_bin", code=text, node=node.code)
    return location


def product_of(session: Session, code: str) -> Sku:
    """The SKU of a scanned product barcode (or a SKU code typed in)."""
    scan = read_scan(code)
    if not scan.text:
        raise Refusal("scan_unreadable")
    sku = session.scalar(select(Sku).join(Barcode, Barcode.sku_id == Sku.id)
                         .where(Barcode.code.in_(scan.product_codes())).limit(1))
    if sku is None:
        sku = session.scalar(select(Sku).where(func.upper(Sku.code) == scan.text.upper()))
    if sku is None:
        raise Refusal("count_unknown_product", code=scan.text)
    return sku


def unit_scanned(session: Session, sku: Sku, code: str) -> None:
    """A unit scanned into the tally must be the SKU being counted."""
    other = product_of(session, code)
    if other.id != sku.id:
        raise Refusal("count_other_product", scanned=other.code, sku=sku.code)


def check_quantity(total: int | None) -> int:
    if total is None or not 0 <= total <= MAX_COUNT:
        raise Refusal("count_quantity_invalid", most=MAX_COUNT)
    return total


def picked_since(session: Session, location_id: int, sku_id: int, since: dt.datetime) -> bool:
    """Was a unit picked from (or the bin reported short) since `since`?"""
    return bool(session.scalar(select(exists().where(
        ScanRecord.work == "pick", ScanRecord.action.in_(("unit", "quantity", "short")), ScanRecord.at >= since,
        ScanRecord.pick_line_id == PickLine.id, PickLine.location_id == location_id, PickLine.sku_id == sku_id))))


def record(session: Session, user: User, scan_id: str, location_code: str, sku_code: str, total: int | None,
           started_at: dt.datetime, limit: int) -> Counted:
    """A counter's blind count of one SKU in one bin, begun at `started_at`
    (when the bin was scanned). Within `limit` units of the books: applied;
    beyond: pending_approval for a lead; a pick from the bin since it began:
    recount (a new request on the list). Refusals: count_unknown_bin,
    count_unknown_product, count_quantity_invalid, scan_unreadable."""
    from app import masterdata

    node = session.get(Node, user.node_id)
    if node is None:
        raise Refusal("no_node")
    total = check_quantity(total)
    location = bin_at(session, node, location_code)
    sku = product_of(session, sku_code)
    bins = _lock(session, node, [(location.id, sku.id)])
    # After the locks: a retry that waited behind its original finds it here.
    seen = scans.seen(session, user, scan_id)
    if seen is not None:
        done = seen.code or ""
        return Counted("repeat", int(done) if done.isdigit() else None)
    b = bins[(location.id, sku.id)]
    asked = _open_request(session, location.id, sku.id)
    count = asked or StockCount(node_id=node.id, location_id=location.id, sku_id=sku.id, reason="cycle",
                                status=CountStatus.requested)
    session.add(count)
    _measure(session, count, b, total, user.code)
    count.open_key = None
    settled = None
    if picked_since(session, location.id, sku.id, started_at):
        count.status, count.decided_by, count.decided_at = CountStatus.recount, "picked_during_count", utcnow()
        session.flush()
        again = request(session, node, location, sku, reason="picked_during_count", by="system")
        again.recount_of_id = count.id
    elif abs(count.variance) <= limit:
        _apply(session, count, b)
        _supersede(session, count)
        session.flush()
        settled = masterdata.settle_stock(session, node, [sku.id])
    else:
        count.status = CountStatus.pending_approval
        _supersede(session, count)
    session.flush()
    _event(session, node, [count], settled)
    session.add(ScanRecord(scan_id=scan_id, user_id=user.id, work="count", action=count.status.value,
                           code=str(count.id), quantity=total))
    session.flush()
    return Counted(count.status.value, count.id)


# --- the lead ------------------------------------------------------------------------------

def _pending(session: Session, lead: User, count_id: int) -> StockCount:
    count = session.get(StockCount, count_id)
    if count is None or count.node_id != lead.node_id:
        raise Refusal("not_found", what="count")
    return count


def _decide(session: Session, lead: User, count_id: int, to: CountStatus) -> StockCount:
    """The conditional UPDATE is the decision: whoever moves the count out of
    pending_approval decided it; the other gets count_already_decided."""
    count = _pending(session, lead, count_id)
    node = session.get(Node, count.node_id)
    bins = _lock(session, node, [(count.location_id, count.sku_id)]) if to == CountStatus.applied else {}
    now = utcnow()
    won = session.execute(update(StockCount).where(StockCount.id == count.id,
                                                   StockCount.status == CountStatus.pending_approval)
                          .values(status=to, decided_by=lead.code, decided_at=now)
                          .execution_options(synchronize_session=False)).rowcount
    session.refresh(count)
    if won != 1:
        raise Refusal("count_already_decided", location=count.location.code, sku=count.sku.code,
                      status=count.status.value, by=count.decided_by or "-")
    return count if not bins else _approved(session, node, count, bins)


def _approved(session: Session, node: Node, count: StockCount, bins) -> StockCount:
    from app import masterdata

    _apply(session, count, bins[(count.location_id, count.sku_id)])
    session.flush()
    settled = masterdata.settle_stock(session, node, [count.sku_id])
    _event(session, node, [count], settled)
    return count


def approve(session: Session, lead: User, count_id: int) -> StockCount:
    """Put a variance over the limit into the books."""
    return _decide(session, lead, count_id, CountStatus.applied)


def order_recount(session: Session, lead: User, count_id: int) -> StockCount:
    """Throw the count away and put the bin back on the counters' list."""
    count = _decide(session, lead, count_id, CountStatus.recount)
    again = request(session, count.node, count.location, count.sku, reason="recount", by=lead)
    again.recount_of_id = count.id
    return count


def reject(session: Session, lead: User, count_id: int) -> StockCount:
    """Throw the count away; the books stay."""
    return _decide(session, lead, count_id, CountStatus.rejected)


# --- reading -------------------------------------------------------------------------------

def requested(session: Session, node: Node) -> list[StockCount]:
    """The counters' task list: open requests, oldest first."""
    return list(session.scalars(select(StockCount).where(
        StockCount.node_id == node.id, StockCount.status == CountStatus.requested)
        .order_by(StockCount.requested_at, StockCount.id)))


def pending(session: Session, node: Node) -> list[StockCount]:
    """Variances waiting for a lead, oldest first."""
    return list(session.scalars(select(StockCount).where(
        StockCount.node_id == node.id, StockCount.status == CountStatus.pending_approval)
        .order_by(StockCount.counted_at, StockCount.id)))


def recent(session: Session, node: Node, limit: int = 10) -> list[StockCount]:
    """Counts that reached the books lately, newest first."""
    return list(session.scalars(select(StockCount).where(
        StockCount.node_id == node.id, StockCount.status == CountStatus.applied)
        .order_by(StockCount.applied_at.desc(), StockCount.id.desc()).limit(limit)))
