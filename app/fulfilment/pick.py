"""Picking (拣货): pick lists, the walk, scans checked line by line, short picks.

A pick list holds `reserved` fulfilments of one node: one order, or a batch
of several picked together into one tote each (cluster picking). Lists are
claimed oldest promise first; the claim is one conditional UPDATE
(`picker_id IS NULL`) whose row count says who won, so two pickers never hold
the same list, on SQLite and PostgreSQL alike. A lead can release a list a
picker abandoned; the next picker resumes it where it stopped.

Lines are per (fulfilment line, bin), ordered along the walk: aisles in
natural order, serpentine (every other visited aisle walked backwards), bins
by `Location.walk_seq` within an aisle. Each line is a small state machine
whose step is stored, so a reload or a login on another device resumes it:

    location --scan bin--> product --scan unit--> quantity --...--> tote --scan tote--> done
                                   (keypad: total)            \\--short--> tote | done

A scan that does not fit is refused with a catalogue message saying what was
expected, and nothing is written. Every accepted scan is stored under the id
the handheld made for it; the same id again is answered as already done.

A short pick re-dispatches the missing units (the hold is released, the
units placed at another node or left awaiting stock) and then corrects the
bin's count, so `Stock.on_hand` stays the sum of the bins.
"""
from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, object_session, selectinload

from app.barcodes import Scan, read_scan
from app.fulfilment import count, events, hold, orders
from app.fulfilment.errors import Refusal
from app.fulfilment.redispatch import redispatch
from app.models import (
    Barcode,
    BinStock,
    Fulfilment,
    FulfilmentLine,
    FulfilmentStatus,
    Location,
    Node,
    Order,
    PickLine,
    PickList,
    PickListFulfilment,
    PickListState,
    PickStep,
    ScanRecord,
    Sku,
    User,
    utcnow,
)

BATCH_ORDERS = 4          # orders on a batch (cluster) list: one cart, four totes
MAX_BATCH_ORDERS = 12
# Fulfilments whose picked units are still counted in their bins (shipping
# takes them out of the bins).
NOT_YET_SHIPPED = (FulfilmentStatus.reserved, FulfilmentStatus.picking, FulfilmentStatus.picked,
                   FulfilmentStatus.packed)
# A tote is busy from the moment it is scanned onto a list until its order is packed.
TOTE_BUSY = (FulfilmentStatus.reserved, FulfilmentStatus.picking, FulfilmentStatus.picked)


@dataclass(frozen=True)
class Accepted:
    """What an accepted scan did, for the screen to confirm it.

    `what`: tote_set, location, unit, quantity, line_done, short, list_done."""

    what: str
    repeat: bool = False
    line_id: int | None = None


# --- reading -------------------------------------------------------------------------

def waiting(session: Session, node_id: int) -> int:
    """Reserved fulfilments at the node that are not on a list yet."""
    return session.scalar(select(func.count()).select_from(Fulfilment).where(
        Fulfilment.node_id == node_id, Fulfilment.status == FulfilmentStatus.reserved, hold.not_held(),
        ~exists().where(PickListFulfilment.fulfilment_id == Fulfilment.id))) or 0


def open_lists(session: Session, node_id: int) -> int:
    """Lists waiting for a picker (released by a lead)."""
    return session.scalar(select(func.count()).select_from(PickList).where(
        PickList.node_id == node_id, PickList.state == PickListState.open)) or 0


def held_by(session: Session, user: User) -> PickList | None:
    """The list this picker is working on: what a new login resumes."""
    return session.scalar(_loading(select(PickList)).where(
        PickList.picker_id == user.id, PickList.state == PickListState.picking).order_by(PickList.id))


def lists_in_progress(session: Session, node_id: int) -> list[PickList]:
    """Lists held by pickers at a node, oldest claim first: the lead's view."""
    return list(session.scalars(_loading(select(PickList)).where(
        PickList.node_id == node_id, PickList.state == PickListState.picking).order_by(PickList.claimed_at)))


def _loading(query):
    return query.options(
        selectinload(PickList.orders).selectinload(PickListFulfilment.fulfilment).selectinload(Fulfilment.order),
        selectinload(PickList.lines).selectinload(PickLine.location),
        selectinload(PickList.lines).selectinload(PickLine.sku).selectinload(Sku.barcodes),
        selectinload(PickList.lines).selectinload(PickLine.fulfilment_line),
        selectinload(PickList.picker),
    )


def next_tote_slot(pl: PickList) -> PickListFulfilment | None:
    """The first slot still without a tote (totes are scanned before picking starts)."""
    for slot in pl.orders:
        if slot.tote is None and slot.fulfilment.status in (FulfilmentStatus.reserved, FulfilmentStatus.picking):
            return slot
    return None


def current_line(pl: PickList) -> PickLine | None:
    """Lines are picked in walk order: the first one not done."""
    return next((line for line in pl.lines if line.step != PickStep.done), None)


def slot_of(pl: PickList, line: PickLine) -> PickListFulfilment:
    return next(s for s in pl.orders if s.fulfilment_id == line.fulfilment_line.fulfilment_id)


def progress(pl: PickList) -> tuple[int, int]:
    """(lines done, lines) — lines with nothing to pick left do not count."""
    lines = [line for line in pl.lines if line.quantity > 0 or line.short > 0]
    return sum(1 for line in lines if line.step == PickStep.done), len(lines)


def units_by_bin(f: Fulfilment) -> dict[tuple[int, int], int]:
    """(location_id, sku_id) -> units picked for this fulfilment: where shipping
    takes them from."""
    session = object_session(f)
    rows = session.execute(
        select(PickLine.location_id, PickLine.sku_id, func.sum(PickLine.picked))
        .join(FulfilmentLine, FulfilmentLine.id == PickLine.fulfilment_line_id)
        .where(FulfilmentLine.fulfilment_id == f.id, PickLine.picked > 0)
        .group_by(PickLine.location_id, PickLine.sku_id)).all()
    return {(loc, sku): int(units) for loc, sku, units in rows}


def put_back_list(f: Fulfilment) -> str:
    """Where a cancelled fulfilment's picked units go back, as a worker reads
    it in a refusal: "SKU-A × 2 → A-01-01-1, ..." (codes and numbers, the
    same in both languages; "—" when nothing was picked). Stock never stopped
    counting them in those bins: putting them back makes the shelf agree."""
    taken = units_by_bin(f)
    if not taken:
        return "—"
    session = object_session(f)
    bins = dict(session.execute(select(Location.id, Location.code)
                                .where(Location.id.in_({location for location, _ in taken}))).all())
    skus = dict(session.execute(select(Sku.id, Sku.code).where(Sku.id.in_({sku for _, sku in taken}))).all())
    return ", ".join(f"{skus[sku]} × {units} → {bins[location]}"
                     for (location, sku), units in sorted(taken.items(), key=lambda kv: (bins[kv[0][0]], skus[kv[0][1]])))


def fulfilment_in_tote(session: Session, node: Node, code: str) -> Fulfilment | None:
    """The fulfilment picked into a tote at this node (the latest use of the tote)."""
    return session.scalar(
        select(Fulfilment).join(PickListFulfilment, PickListFulfilment.fulfilment_id == Fulfilment.id)
        .join(PickList, PickList.id == PickListFulfilment.pick_list_id)
        .where(PickList.node_id == node.id, PickListFulfilment.tote == read_scan(code).text)
        .order_by(PickListFulfilment.id.desc()).limit(1))


# --- building and claiming -----------------------------------------------------------

def _natural(text: str) -> tuple:
    """A-2 before A-10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def walk_order(lines: list[PickLine]) -> list[PickLine]:
    """Serpentine by aisle: the aisles this list visits in natural order, the
    first walked up (rising walk_seq), the next down, and so on, so the picker
    never walks an aisle back empty-handed."""
    aisles = sorted({line.location.aisle for line in lines}, key=_natural)
    backwards = {aisle for i, aisle in enumerate(aisles) if i % 2 == 1}

    def key(line: PickLine):
        loc = line.location
        seq = -loc.walk_seq if loc.aisle in backwards else loc.walk_seq
        return (aisles.index(loc.aisle), seq, _natural(loc.code), line.sku_id, line.fulfilment_line_id)

    return sorted(lines, key=key)


def _bin_walk_key(loc: Location) -> tuple:
    return (_natural(loc.aisle), loc.walk_seq, _natural(loc.code))


def bins_for(session: Session, node_id: int, sku_id: int, quantity: int) -> list[tuple[Location, int]]:
    """Where to take `quantity` units from: the node's bins holding the SKU, in
    walk order, each for what it has beyond what other lists will take from it.
    What no bin covers goes to the last bin tried, where the picker will find
    it short."""
    rows = session.execute(
        select(Location, BinStock.on_hand).join(BinStock, BinStock.location_id == Location.id)
        .where(Location.node_id == node_id, BinStock.sku_id == sku_id)).all()
    if not rows:
        return []
    promised = dict(session.execute(
        select(PickLine.location_id, func.sum(PickLine.quantity))
        .join(FulfilmentLine, FulfilmentLine.id == PickLine.fulfilment_line_id)
        .join(Fulfilment, Fulfilment.id == FulfilmentLine.fulfilment_id)
        .where(PickLine.sku_id == sku_id, PickLine.location_id.in_([loc.id for loc, _ in rows]),
               Fulfilment.status.in_(NOT_YET_SHIPPED))
        .group_by(PickLine.location_id)).all())
    rows.sort(key=lambda r: _bin_walk_key(r[0]))
    plan: list[tuple[Location, int]] = []
    left = quantity
    for loc, on_hand in rows:
        free = on_hand - int(promised.get(loc.id, 0))
        if free <= 0 or left <= 0:
            continue
        take = min(free, left)
        plan.append((loc, take))
        left -= take
    if left > 0:
        fullest = max(rows, key=lambda r: r[1])[0]
        target = plan[-1][0] if plan else fullest
        plan = [(loc, q + left) if loc is target else (loc, q) for loc, q in plan] or [(target, left)]
    return plan


def build_list(session: Session, node: Node, orders_wanted: int) -> PickList | None:
    """A new open list of up to `orders_wanted` reserved fulfilments not on any
    list, oldest promise first. None when nothing is waiting. A concurrent
    builder taking the same fulfilment fails on the unique key and retries."""
    fulfilments = list(session.scalars(
        select(Fulfilment).join(Order, Order.id == Fulfilment.order_id)
        .where(Fulfilment.node_id == node.id, Fulfilment.status == FulfilmentStatus.reserved, hold.not_held(),
               ~exists().where(PickListFulfilment.fulfilment_id == Fulfilment.id))
        .order_by(Order.promised_by.is_(None), Order.promised_by, Order.placed_at, Fulfilment.id)
        .limit(orders_wanted)
        .options(selectinload(Fulfilment.lines), selectinload(Fulfilment.order))))
    if not fulfilments:
        return None
    promises = [f.order.promised_by for f in fulfilments if f.order.promised_by]
    pl = PickList(ref=f"PL-new-{uuid.uuid4().hex[:16]}", node_id=node.id,
                  state=PickListState.open, promised_by=min(promises) if promises else None)
    session.add(pl)
    lines: list[PickLine] = []
    for slot, f in enumerate(fulfilments, start=1):
        pl.orders.append(PickListFulfilment(fulfilment=f, slot=slot))
        binless: dict[int, int] = {}
        for fl in f.lines:
            if fl.quantity <= 0:
                continue
            plan = bins_for(session, node.id, fl.sku_id, fl.quantity)
            if not plan:
                binless[fl.sku_id] = fl.quantity
            for loc, units in plan:
                lines.append(PickLine(fulfilment_line=fl, location=loc, sku_id=fl.sku_id, quantity=units))
        if binless:
            # Held at the node but in no bin: nobody can pick it here.
            redispatch(session, f, binless, reason="no_bin")
    for seq, line in enumerate(walk_order(lines), start=1):
        line.seq = seq
        pl.lines.append(line)
    session.flush()
    pl.ref = f"PL-{pl.id:06d}"
    session.flush()
    return pl


def claim(session: Session, pl: PickList, user: User) -> None:
    """Take an open list for `user`. The conditional UPDATE is the whole claim:
    whoever changes the row owns the list; the loser gets `pick_list_taken`."""
    now = utcnow()
    won = session.execute(
        update(PickList)
        .where(PickList.id == pl.id, PickList.state == PickListState.open, PickList.picker_id.is_(None))
        .values(state=PickListState.picking, picker_id=user.id, claimed_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if won != 1:
        session.expire(pl)
        holder = pl.picker.code if pl.picker is not None else "?"
        raise Refusal("pick_list_taken", list=pl.ref, picker=holder)
    session.expire(pl, ["state", "picker_id", "claimed_at", "picker"])
    for slot in pl.orders:
        f = slot.fulfilment
        started = session.execute(
            update(Fulfilment).where(Fulfilment.id == f.id, Fulfilment.status == FulfilmentStatus.reserved)
            .values(status=FulfilmentStatus.picking, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        session.expire(f, ["status", "updated_at"])
        if started:
            events.record(session, "fulfilment.picking", fulfilment=f,
                          data={"pick_list": pl.ref, "picker": user.code, "slot": slot.slot})
            orders.refresh(f.order)
    events.record(session, "pick.claimed", node=pl.node,
                  data={"pick_list": pl.ref, "picker": user.code, "fulfilments": [s.fulfilment.ref for s in pl.orders]})
    _reconcile(session, pl)
    _finish(session, user, pl)  # every order on it may have been cancelled meanwhile


def claim_next(session: Session, user: User, orders_wanted: int = BATCH_ORDERS) -> PickList:
    """The list this picker holds; else the oldest-promise open list (released
    by a lead); else a new one of up to `orders_wanted` orders."""
    node = _node_of(session, user)
    held = held_by(session, user)
    if held is not None:
        return held
    orders_wanted = max(1, min(orders_wanted, MAX_BATCH_ORDERS))
    candidates = session.scalars(
        select(PickList).where(PickList.node_id == node.id, PickList.state == PickListState.open,
                               PickList.picker_id.is_(None))
        .order_by(PickList.promised_by.is_(None), PickList.promised_by, PickList.id).limit(20)).all()
    for pl in candidates:
        try:
            claim(session, pl, user)  # a lost claim changed nothing
        except Refusal:
            continue  # someone was faster; try the next one
        return held_by(session, user)
    pl = build_list(session, node, orders_wanted)
    if pl is None:
        raise Refusal("nothing_to_pick", node=node.name)
    claim(session, pl, user)
    return held_by(session, user)


def release(session: Session, pl: PickList, by: User) -> None:
    """A lead gives an abandoned list back: the next claim resumes it, totes
    and steps as they were."""
    if pl.node_id != by.node_id:
        raise Refusal("not_found", what="pick list")
    picker = pl.picker.code if pl.picker else None
    freed = session.execute(
        update(PickList).where(PickList.id == pl.id, PickList.state == PickListState.picking)
        .values(state=PickListState.open, picker_id=None)
        .execution_options(synchronize_session=False)).rowcount
    if freed != 1:
        raise Refusal("pick_list_not_held", list=pl.ref)
    session.expire(pl, ["state", "picker_id", "picker"])
    events.record(session, "pick.released", node=pl.node, data={"pick_list": pl.ref, "picker": picker, "by": by.code})


def list_for_release(session: Session, lead: User, ref: str) -> PickList:
    pl = session.scalar(_loading(select(PickList)).where(PickList.ref == ref, PickList.node_id == lead.node_id))
    if pl is None:
        raise Refusal("not_found", what="pick list")
    return pl


# --- scanning --------------------------------------------------------------------------

def scan(session: Session, user: User, scan_id: str, raw: str) -> Accepted:
    """One scan on the picker's list.

    Before picking: each slot's tote (tote_set). Then, on the current line,
    by its step: the bin's label (location), a unit of its product (unit;
    line complete -> tote step), the tote of its order (line_done, or
    list_done after the last line). Refusals: scan_unreadable, not_a_tote,
    tote_in_use, wrong_location, wrong_product, product_of_another_line,
    over_pick, pick_incomplete, wrong_tote, no_pick_list."""
    if _seen(session, scan_id):
        return Accepted("repeat", repeat=True)
    pl = _locked_list(session, user)
    code = read_scan(raw)
    if not code.text:
        raise Refusal("scan_unreadable")
    _reconcile(session, pl)
    slot = next_tote_slot(pl)
    if slot is not None:
        return _set_tote(session, user, scan_id, pl, slot, code)
    line = current_line(pl)
    if line is None:  # emptied under the picker (cancels): close it
        _finish(session, user, pl)
        return Accepted("list_done")
    target = slot_of(pl, line)
    if line.step == PickStep.location:
        if not _same(code.text, line.location.code):
            raise Refusal("wrong_location", scanned=code.text, expected=line.location.code)
        line.step = PickStep.product
        return _accept(session, user, scan_id, pl, line, "location", code.text)
    if line.step in (PickStep.product, PickStep.quantity):
        if _same(code.text, line.location.code):
            return Accepted("location", line_id=line.id)  # the bin again: harmless
        if line.step == PickStep.quantity and target.tote and _same(code.text, target.tote):
            raise Refusal("pick_incomplete", left=line.quantity - line.picked, sku=line.sku.code)
        _check_product(session, pl, line, code)
        if line.picked + 1 > line.quantity:  # pragma: no cover - the step says otherwise
            raise _over_pick(line, target, line.picked + 1)
        line.picked += 1
        line.step = PickStep.tote if line.picked == line.quantity else PickStep.quantity
        return _accept(session, user, scan_id, pl, line, "unit", code.text, quantity=1)
    # step tote
    if target.tote and _same(code.text, target.tote):
        return _line_done(session, user, scan_id, pl, line, code.text)
    if line.sku_id in _skus_of(session, code):
        raise _over_pick(line, target, line.picked + 1)
    raise Refusal("wrong_tote", scanned=code.text, sku=line.sku.code, fulfilment=target.fulfilment.ref,
                  expected=target.tote, slot=target.slot)


def _line_in_hand(session: Session, user: User) -> tuple[PickList, PickLine, PickListFulfilment]:
    """The picker's list (locked, reconciled), its current line and that
    line's slot, for work that needs the bin scanned already."""
    pl = _locked_list(session, user)
    _reconcile(session, pl)
    line = current_line(pl)
    if line is None or next_tote_slot(pl) is not None:
        raise Refusal("no_pick_list")
    target = slot_of(pl, line)
    if line.step == PickStep.location:
        raise Refusal("short_needs_location", expected=line.location.code)
    return pl, line, target


def enter_quantity(session: Session, user: User, scan_id: str, total: int) -> Accepted:
    """The keypad: how many units of the current line are in hand in all, after
    at least one was scanned (so the product is proven). quantity/product ->
    quantity, or tote when complete. Refusals: quantity_invalid, over_pick,
    wrong_product (nothing scanned yet)."""
    if _seen(session, scan_id):
        return Accepted("repeat", repeat=True)
    pl, line, target = _line_in_hand(session, user)
    if line.step == PickStep.product:
        raise Refusal("scan_product_first", sku=line.sku.code)
    if total > line.quantity:
        raise _over_pick(line, target, total)
    if total < 1:
        raise Refusal("quantity_invalid", most=line.quantity)
    line.picked = total
    line.step = PickStep.tote if total == line.quantity else PickStep.quantity
    return _accept(session, user, scan_id, pl, line, "quantity", None, quantity=total)


def short_pick(session: Session, user: User, scan_id: str) -> Accepted:
    """The bin holds no more than what was picked from it. The missing units
    are re-dispatched first (hold released, placed at another node or
    awaiting stock), then the bin is counted at what is really there, so
    stock stays the sum of the bins. The line goes to its tote step with the
    units in hand, or is done when there are none. Refusals:
    short_needs_location, short_not_needed."""
    from app import masterdata  # masterdata imports the pipeline; import late

    if _seen(session, scan_id):
        return Accepted("repeat", repeat=True)
    pl, line, target = _line_in_hand(session, user)
    if line.step == PickStep.tote or line.picked >= line.quantity:
        raise Refusal("short_not_needed", quantity=line.quantity, sku=line.sku.code, tote=target.tote)
    missing = line.quantity - line.picked
    f = target.fulfilment
    placed = redispatch(session, f, {line.sku_id: missing}, reason="short_pick", by=user.code)
    line.short += missing
    line.quantity = line.picked
    line.step = PickStep.tote if line.picked > 0 else PickStep.done
    if line.step == PickStep.done:
        line.done_at = utcnow()
    session.flush()
    # What the books say is in the bin: the units picked from it that have not
    # shipped yet (shipping takes them off); nothing else was found.
    in_bin = session.scalar(
        select(func.coalesce(func.sum(PickLine.picked), 0))
        .join(FulfilmentLine, FulfilmentLine.id == PickLine.fulfilment_line_id)
        .join(Fulfilment, Fulfilment.id == FulfilmentLine.fulfilment_id)
        .where(PickLine.location_id == line.location_id, PickLine.sku_id == line.sku_id,
               Fulfilment.status.in_(NOT_YET_SHIPPED)))
    counted = masterdata.count_stock(session, pl.node, masterdata.StockBody(items=[masterdata.StockItem(
        location=line.location.code, sku=line.sku.code, on_hand=int(in_bin))]))
    events.record(session, "pick.short", fulfilment=f, data={
        "pick_list": pl.ref, "location": line.location.code, "sku": line.sku.code, "missing": missing,
        "bin_on_hand": int(in_bin), "to": [p.ref for p in placed], "by": user.code,
        "also_moved": counted.get("redispatched", [])})
    count.request(session, pl.node, line.location, line.sku, reason="short_pick", by=user)
    _record(session, user, scan_id, pl, line, "short", line.location.code, missing)
    session.refresh(pl)
    _reconcile(session, pl)
    finished = _finish(session, user, pl)
    return Accepted("list_done" if finished else "short", line_id=line.id)


# --- the steps --------------------------------------------------------------------------

def _locked_list(session: Session, user: User) -> PickList:
    """The picker's list, its row locked for this transaction (PostgreSQL; on
    SQLite the write lock is already held), so two devices of one picker
    cannot both count the same unit."""
    pl_id = session.scalar(select(PickList.id).where(
        PickList.picker_id == user.id, PickList.state == PickListState.picking).with_for_update())
    if pl_id is None:
        raise Refusal("no_pick_list")
    return session.scalar(_loading(select(PickList)).where(PickList.id == pl_id))


def _seen(session: Session, scan_id: str) -> bool:
    return session.scalar(select(ScanRecord.id).where(ScanRecord.scan_id == scan_id)) is not None


def _record(session: Session, user: User, scan_id: str, pl: PickList, line: PickLine | None, action: str,
            code: str | None, quantity: int | None = None) -> None:
    # The unique key on scan_id makes a concurrent retry of the same scan fail
    # here and run again, to find it already counted.
    session.add(ScanRecord(scan_id=scan_id, user_id=user.id, work="pick", action=action, code=code,
                           quantity=quantity, pick_list_id=pl.id, pick_line_id=line.id if line else None))
    session.flush()


def _accept(session, user, scan_id, pl, line, action, code, quantity=None) -> Accepted:
    _record(session, user, scan_id, pl, line, action, code, quantity)
    return Accepted(action, line_id=line.id)


def _same(scanned: str, expected: str) -> bool:
    return scanned.strip().upper() == expected.strip().upper()


def _skus_of(session: Session, code: Scan) -> set[int]:
    return set(session.scalars(select(Barcode.sku_id).where(Barcode.code.in_(code.product_codes()))))


def _check_product(session: Session, pl: PickList, line: PickLine, code: Scan) -> None:
    skus = _skus_of(session, code)
    if line.sku_id in skus:
        return
    expected = line.sku.barcodes[0].code if line.sku.barcodes else line.sku.code
    other = next((o for o in pl.lines if o.sku_id in skus and o.id != line.id), None)
    if other is not None:
        raise Refusal("product_of_another_line", scanned=code.text, other=other.sku.code, expected=expected,
                      sku=line.sku.code, details={"other_line": other.seq})
    raise Refusal("wrong_product", scanned=code.text, expected=expected, sku=line.sku.code)


def _over_pick(line: PickLine, target: PickListFulfilment, would_have: int) -> Refusal:
    return Refusal("over_pick", quantity=line.quantity, sku=line.sku.code, would_have=would_have,
                   tote=target.tote or "")


def _set_tote(session: Session, user: User, scan_id: str, pl: PickList, slot: PickListFulfilment,
              code: Scan) -> Accepted:
    tote = code.text
    is_location = session.scalar(select(Location.id).where(
        Location.node_id == pl.node_id, func.upper(Location.code) == tote.upper()))
    if is_location is not None or _skus_of(session, code):
        raise Refusal("not_a_tote", scanned=tote, slot=slot.slot)
    busy = session.scalar(
        select(Fulfilment.ref).join(PickListFulfilment, PickListFulfilment.fulfilment_id == Fulfilment.id)
        .join(PickList, PickList.id == PickListFulfilment.pick_list_id)
        .where(PickList.node_id == pl.node_id, func.upper(PickListFulfilment.tote) == tote.upper(),
               Fulfilment.status.in_(TOTE_BUSY)).limit(1))
    if busy is not None:
        raise Refusal("tote_in_use", tote=tote, fulfilment=busy, slot=slot.slot)
    slot.tote = tote
    _record(session, user, scan_id, pl, None, "tote", tote)
    return Accepted("tote_set")


def _line_done(session: Session, user: User, scan_id: str, pl: PickList, line: PickLine, code: str) -> Accepted:
    line.step = PickStep.done
    line.done_at = utcnow()
    _record(session, user, scan_id, pl, line, "tote", code, line.picked)
    finished = _finish(session, user, pl)
    return Accepted("list_done" if finished else "line_done", line_id=line.id)


def _finish(session: Session, user: User, pl: PickList) -> bool:
    """Fulfilments whose lines are all done are picked; the list is done when
    every line is. Returns whether the list is done."""
    now = utcnow()
    session.flush()
    for slot in pl.orders:
        f = slot.fulfilment
        mine = [line for line in pl.lines if line.fulfilment_line.fulfilment_id == f.id]
        if f.status != FulfilmentStatus.picking or any(line.step != PickStep.done for line in mine):
            continue
        picked = session.execute(
            update(Fulfilment).where(Fulfilment.id == f.id, Fulfilment.status == FulfilmentStatus.picking)
            .values(status=FulfilmentStatus.picked, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        session.expire(f, ["status", "updated_at"])
        if picked:
            bins = defaultdict(int)
            for line in mine:
                if line.picked:
                    bins[(line.location.code, line.sku.code)] += line.picked
            events.record(session, "fulfilment.picked", fulfilment=f, data={
                "pick_list": pl.ref, "tote": slot.tote, "by": user.code,
                "units": [{"location": loc, "sku": sku, "quantity": q} for (loc, sku), q in sorted(bins.items())]})
            orders.refresh(f.order)
    if any(line.step != PickStep.done for line in pl.lines):
        return False
    pl.state = PickListState.done
    pl.finished_at = now
    events.record(session, "pick.finished", node=pl.node, data={"pick_list": pl.ref, "picker": user.code})
    return True


def _reconcile(session: Session, pl: PickList) -> None:
    """Keep lines true to their fulfilments, which can change under a list: a
    cancel, a re-dispatch after a stock count. Units already in hand stay on
    the line (they go to the tote); what is no longer wanted is dropped."""
    now = utcnow()
    planned: dict[int, list[PickLine]] = defaultdict(list)
    for line in pl.lines:
        planned[line.fulfilment_line_id].append(line)
    for lines in planned.values():
        fl = lines[0].fulfilment_line
        f = next(s.fulfilment for s in pl.orders if s.fulfilment_id == fl.fulfilment_id)
        wanted = fl.quantity if f.status in (FulfilmentStatus.reserved, FulfilmentStatus.picking) else 0
        excess = sum(line.quantity for line in lines) - wanted
        for line in reversed(lines):
            if excess <= 0:
                break
            if line.step == PickStep.done:
                continue
            drop = min(excess, line.quantity - line.picked)
            if drop <= 0:
                continue
            line.quantity -= drop
            excess -= drop
            if line.picked == line.quantity:
                if line.picked == 0:
                    line.step, line.done_at = PickStep.done, now
                elif line.step != PickStep.location:
                    line.step = PickStep.tote
    session.flush()


def _node_of(session: Session, user: User) -> Node:
    if user.node_id is None:
        raise Refusal("no_node")
    return session.get(Node, user.node_id)
